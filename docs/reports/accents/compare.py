"""The table of README.md from the eval folders beside this file: recall of the reference answer in
the chosen passages (`eval qa --no-generate`), and how many questions the answerability gate would
send to abstention (answerability under `retrieval.min_answerability`, 0.38 in the default config).

    python docs/reports/accents/compare.py
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
BAR = 0.38


def row(folder: str) -> dict[str, object]:
    rows = [json.loads(x) for x in (HERE / folder / "questions.jsonl").read_text().splitlines() if x.strip()]
    mean = lambda key: sum(bool(r[key]) for r in rows) / len(rows)  # noqa: E731
    gated = sum(r["answerability"] is not None and r["answerability"] < BAR for r in rows) / len(rows)
    return {
        "run": folder,
        "questions": len(rows),
        "recall@1": mean("recall_at_1"),
        "recall@5": mean("recall_at_5"),
        "under the gate": gated,
    }


def main() -> None:
    names = ["accented", "typed", "squad1000"]
    print(
        "| set | questions | recall@1 before → after | recall@5 before → after "
        "| under the answerability bar before → after |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        b, a = row(f"before-{name}"), row(f"after-{name}")
        cells = [f"{b[k]:.3f} → {a[k]:.3f}" for k in ("recall@1", "recall@5", "under the gate")]
        print(f"| {name} | {b['questions']} | " + " | ".join(cells) + " |")
    changed = {}
    for name in names:
        before = {
            r["id"]: r
            for r in map(json.loads, (HERE / f"before-{name}" / "questions.jsonl").read_text().splitlines())
        }
        after = {
            r["id"]: r
            for r in map(json.loads, (HERE / f"after-{name}" / "questions.jsonl").read_text().splitlines())
        }
        changed[name] = [
            (before[i]["question"], before[i]["recall_at_5"], after[i]["recall_at_5"])
            for i in before
            if before[i]["recall_at_5"] != after[i]["recall_at_5"]
        ]
    for name, rows in changed.items():
        print(f"\n{name}: recall@5 changed on {len(rows)}")
        for q, b, a in rows:
            print(f"- {q!r}: {b} → {a}")


if __name__ == "__main__":
    main()
