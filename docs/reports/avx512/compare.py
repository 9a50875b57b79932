"""Side by side: two `eval qa` reports over the same questions (their questions.jsonl rows).

python compare.py DIR_A DIR_B   # one markdown table, then the questions whose outcome differs
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def rows(folder: str) -> dict[str, dict]:
    with (Path(folder) / "questions.jsonl").open() as f:
        return {r["id"]: r for r in map(json.loads, f)}


def figures(rs: list[dict]) -> dict[str, float]:
    n = len(rs)
    outcome = [r.get("outcome") for r in rs]
    t = [r["timings"] for r in rs if r.get("timings")]
    gen = [x for x in t if x.get("prompt_tokens")]  # the gate stops some before the model
    return {
        "questions": n,
        "accuracy": outcome.count("correct") / n,
        "abstention": sum(bool(r.get("abstained")) for r in rs) / n,
        "hallucination": outcome.count("wrong") / n,
        "prompt_tokens_p50": statistics.median(x["prompt_tokens"] for x in gen),
        "ttft_ms_p50": statistics.median(x["ttft_ms"] for x in gen),
        "total_ms_p50": statistics.median(x["total_ms"] for x in gen),
    }


def main() -> None:
    a, b = rows(sys.argv[1]), rows(sys.argv[2])
    ids = [i for i in a if i in b]
    fa, fb = figures([a[i] for i in ids]), figures([b[i] for i in ids])
    print("| | " + " | ".join(fa) + " |")
    print("|---" * (len(fa) + 1) + "|")
    for name, f in ((sys.argv[1], fa), (sys.argv[2], fb)):
        print(
            f"| {Path(name).name} | "
            + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in f.values())
            + " |"
        )
    same = sum(a[i].get("answer") == b[i].get("answer") for i in ids)
    print(f"\nanswers identical: {same} / {len(ids)}\n")
    for i in ids:
        if a[i].get("outcome") != b[i].get("outcome"):
            print(f"- {a[i]['question']} — {a[i].get('outcome')} → {b[i].get('outcome')}")
            print(f"  - A: {a[i].get('answer')!r}\n  - B: {b[i].get('answer')!r}")


if __name__ == "__main__":
    main()
