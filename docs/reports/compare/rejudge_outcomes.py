"""Re-judge a run's recorded final answers under today's judge (evaluation/honest.py), no model and
no retrieval: for a judge change, the before and after of the same answers.

    .venv/bin/python docs/reports/compare/rejudge_outcomes.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from answer_engine.citations import MARKER_RE
from answer_engine.evaluation import honest


def main(runs: list[str]) -> None:
    for run in runs:
        rows = [json.loads(line) for line in (Path(run) / "questions.jsonl").read_text().splitlines()]
        before, after, changed = Counter(), Counter(), []
        for r in rows:
            plain = MARKER_RE.sub("", r.get("answer") or "")
            new = honest.outcome(
                plain, r["answers"], answerable=r.get("answerable", True), question=r["question"]
            )
            before[r["outcome"]] += 1
            after[new] += 1
            if new != r["outcome"]:
                changed.append({"id": r["id"], "question": r["question"], "was": r["outcome"], "now": new})
        n = len(rows)
        summary = {
            "run": run,
            "questions": n,
            "before": {k: round(v / n, 3) for k, v in sorted(before.items())},
            "after": {k: round(v / n, 3) for k, v in sorted(after.items())},
            "changed": changed,
        }
        print(json.dumps(summary, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
