"""The development questions the prompt layout was chosen on: SQuAD questions 101-160 of the order
`eval qa --sample` draws from (shuffled with its seed), so they never meet the reported 100.

    .venv/bin/python docs/reports/prompt/devq.py DIR     # writes DIR/questions.jsonl (+ corpus link)

The file holds SQuAD text, so it is written outside the repository; the ids are in dev-ids.txt.
"""

import json
import random
import sys
from pathlib import Path

from answer_engine.evaluation.commands import SAMPLE_SEED

SQUAD = Path(__file__).resolve().parents[4] / "shared" / "evaldata" / "squad"
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rows = [json.loads(line) for line in (SQUAD / "questions.jsonl").read_text().splitlines() if line.strip()]
random.Random(SAMPLE_SEED).shuffle(rows)
dev = rows[100:160]
(out / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev))
link = out / "corpus.jsonl"  # the honest judge reads the gold paragraphs beside the questions
if not link.exists():
    link.symlink_to(SQUAD / "corpus.jsonl")
(Path(__file__).parent / "dev-ids.txt").write_text("".join(r["id"] + "\n" for r in dev))
print(f"{len(dev)} questions -> {out / 'questions.jsonl'}")
