"""The router's curve from two runs of `eval qa` on the same questions: always local and always strong.

With greedy decoding, what a router does with a question depends only on the local run's own
signals (the best passage's embedding similarity, the verifier's verdict on the local answer; a
question the engine answered without a model, off topic or with nothing found, is not routed), so
each policy's outcome is the strong run's on the questions it escalates and the local run's on the
others; its time is the strong run's for questions escalated before generating, the local plus the
strong run's for those escalated after verification, the local run's otherwise. A real routed run
(`generation.backend = "router"`) checks the composition. Judged by the same honest judge as every
`eval qa` (`evaluation/honest.py`): accuracy, hallucination (wrong and not abstained), abstention.

    python -m answer_engine.evaluation.routecurve docs/reports/router/local docs/reports/router/strong
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from answer_engine.evaluation.metrics import percentile


def load(folder: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    return {r["id"]: r for r in rows}


def policy_point(local: dict, strong: dict, *, below: float, unsupported: bool) -> dict[str, Any]:
    outcomes, times, escalated = [], [], 0
    for qid, lo in local.items():
        st = strong[qid]
        # the engine answered itself (nothing found, off topic: no model was asked): nothing to route
        asked = bool(lo.get("timings") and lo["timings"].get("ttft_ms"))
        before = asked and bool(below) and lo.get("relevance") is not None and lo["relevance"] < below
        after = asked and not before and unsupported and lo.get("answer_support") not in ("supported", None)
        if before or after:
            escalated += 1
            outcomes.append(st["outcome"])
            times.append(st["latency_ms"] + (lo["latency_ms"] if after else 0.0))
        else:
            outcomes.append(lo["outcome"])
            times.append(lo["latency_ms"])
    n = len(outcomes)
    return {
        "escalated_share": round(escalated / n, 3),
        "accuracy": round(outcomes.count("correct") / n, 3),
        "hallucination_rate": round(outcomes.count("wrong") / n, 3),
        "abstention": round(outcomes.count("abstained") / n, 3),
        "latency_ms_mean": round(sum(times) / n, 1),
        "latency_ms_p95": round(percentile(times, 95), 1),
    }


def curve(local_dir: Path, strong_dir: Path) -> dict[str, dict[str, Any]]:
    local, strong = load(local_dir), load(strong_dir)
    if set(local) != set(strong):
        raise SystemExit("the two runs are not on the same questions")
    points = {
        "always local": policy_point(local, strong, below=0.0, unsupported=False),
        "always strong": policy_point(local, strong, below=1.01, unsupported=False),
        "unsupported -> strong": policy_point(local, strong, below=0.0, unsupported=True),
    }
    for t in (0.4, 0.5, 0.6):
        points[f"relevance < {t} -> strong"] = policy_point(local, strong, below=t, unsupported=False)
        points[f"relevance < {t} or unsupported -> strong"] = policy_point(
            local, strong, below=t, unsupported=True
        )
    return points


if __name__ == "__main__":
    result = curve(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(result, indent=1))
