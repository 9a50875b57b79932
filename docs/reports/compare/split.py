"""A HotpotQA run's figures by split: test = the 30 questions `eval qa --sample 30` takes (seed
20251123, as every split in docs/reports), development = the other 22 (the failures read while
designing).

    .venv/bin/python docs/reports/compare/split.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from answer_engine.evaluation.commands import SAMPLE_SEED

HOTPOT = Path(__file__).resolve().parents[4] / "shared" / "evaldata" / "hotpotqa" / "questions.jsonl"


def main(runs: list[str]) -> None:
    ids = [json.loads(line)["id"] for line in HOTPOT.read_text().splitlines() if line.strip()]
    random.Random(SAMPLE_SEED).shuffle(ids)
    test = set(ids[:30])
    for run in runs:
        rows = [json.loads(line) for line in (Path(run) / "questions.jsonl").read_text().splitlines()]
        out = {"run": run}
        for name, part in (
            ("dev", [r for r in rows if r["id"] not in test]),
            ("test", [r for r in rows if r["id"] in test]),
        ):
            n = len(part)
            out[name] = {
                "questions": n,
                "accuracy": round(sum(r["outcome"] == "correct" for r in part) / n, 3),
                "abstention": round(sum(r["outcome"] == "abstained" for r in part) / n, 3),
                "hallucination": round(sum(r["outcome"] == "wrong" for r in part) / n, 3),
            }
        print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
