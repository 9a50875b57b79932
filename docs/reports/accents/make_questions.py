"""The shared SQuAD questions that name something with a Latin accent (Gospić, Temüjin, Kraków...),
written twice: as asked (`accented.jsonl`) and as a reader types them without the accents
(`typed.jsonl`). The accents are taken off here by unicodedata alone, not by the engine's
`text.fold`, so the measurement shares no code with what it measures.

    python docs/reports/accents/make_questions.py
"""

import json
import re
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent
SQUAD = HERE.parents[2] / ".." / "shared" / "evaldata" / "squad" / "questions.jsonl"
LATIN_ACCENTED = re.compile(r"[\u00c0-\u024f\u1e00-\u1eff]")
NO_DECOMPOSITION = str.maketrans(
    {
        "ł": "l",
        "Ł": "L",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ß": "ss",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
    }
)


def typed(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(NO_DECOMPOSITION))
    return "".join(c for c in text if not unicodedata.combining(c))


def main() -> None:
    rows = [json.loads(line) for line in SQUAD.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [r for r in rows if LATIN_ACCENTED.search(r["question"])]
    with (
        (HERE / "accented.jsonl").open("w", encoding="utf-8") as a,
        (HERE / "typed.jsonl").open("w", encoding="utf-8") as t,
    ):
        for r in chosen:
            a.write(json.dumps(r, ensure_ascii=False) + "\n")
            t.write(json.dumps({**r, "question": typed(r["question"])}, ensure_ascii=False) + "\n")
    print(f"{len(chosen)} of {len(rows)} questions")


if __name__ == "__main__":
    main()
