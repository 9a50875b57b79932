"""Report folders: summary JSON, per-item JSONL, a markdown summary and PNG plots (matplotlib)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from answer_engine.evaluation.metrics import percentile

DEFAULT_ROOT = Path("bench") / "reports"
STAGES = ("search_ms", "fetch_ms", "extract_ms", "select_ms", "ttft_ms", "generation_ms")


def report_dir(kind: str, explicit: str | None) -> Path:
    path = Path(explicit) if explicit else DEFAULT_ROOT / f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stage_table(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    table = {}
    for stage in STAGES:
        values = [
            r["timings"][stage] for r in records if r.get("timings") and r["timings"].get(stage) is not None
        ]
        table[stage] = {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}
    return table


def plot_stages(path: Path, table: dict[str, dict[str, float]], title: str) -> None:
    plt = _plt()
    names = [s.removesuffix("_ms") for s in table]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.barh(names, [table[s]["p50"] for s in table], color="#1a5fd1", label="p50")
    ax.barh(
        names,
        [table[s]["p95"] - table[s]["p50"] for s in table],
        left=[table[s]["p50"] for s in table],
        color="#9bb8ea",
        label="p95",
    )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("ms (log scale)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bars(
    path: Path, values: dict[str, float], title: str, *, ylim: tuple[float, float] | None = (0, 1)
) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(list(values), list(values.values()), color="#1a5fd1")
    ax.bar_label(bars, fmt="%.2f")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return "" if value is None else str(value)
