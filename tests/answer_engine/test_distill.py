"""`answer-engine distill`: the real pipeline picks the passages; the teacher is an OpenAI-compatible
server (a scripted one through httpx.MockTransport, and the real llama-cpp-python server with
SmolLM2); answers are kept only when the dataset's checks pass; abstentions leave the article out."""

import json
import re
from pathlib import Path

import httpx
import pytest

from answer_engine.backends.openai_compat import OpenAIBackend
from answer_engine.cli import main
from answer_engine.distill import ABSTENTION, check, distill, split_articles

SHARED = Path(__file__).resolve().parents[3] / "shared" / "evaldata" / "squad"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/evaldata is not beside the repo")
PICK = {"Warsaw": 2, "Nikola_Tesla": 2, "Oxygen": 2, "Black_Death": 2}


@pytest.fixture
def questions(tmp_path):
    """Real SQuAD rows of four articles, with the gold paragraphs (corpus.jsonl) beside them."""
    rows, taken = [], dict.fromkeys(PICK, 0)
    for line in (SHARED / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["title"] in taken and taken[q["title"]] < PICK[q["title"]]:
            taken[q["title"]] += 1
            rows.append(q)
    f = tmp_path / "squad" / "questions.jsonl"
    f.parent.mkdir()
    f.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (f.parent / "corpus.jsonl").symlink_to(SHARED / "corpus.jsonl")
    return f


def scripted_teacher(answers: dict[str, str], *, cite_wrong: set[str] = frozenset()):
    """An OpenAI-compatible server that cites the source holding the answer (for the questions in
    ``cite_wrong``, a source it was not given), streaming as real servers do."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "teacher"}]})
        prompt = json.loads(request.content)["messages"][-1]["content"]
        question = prompt.rsplit("Question: ", 1)[1].strip()
        answer = answers.get(question, "")
        sources = re.findall(r"Source \[(\d+)\]: (.*?)(?=\n\nSource \[|\n</sources>)", prompt, flags=re.S)
        holding = [n for n, text in sources if answer and answer.lower() in text.lower()]
        if question in cite_wrong:  # the answer, citing a source it was not given
            reply = f"It was {answer} [9]."
        elif not holding:
            reply = "I could not find the answer in the sources."
        else:
            reply = f"It was {answer} [{holding[0]}]."
        chunks = [{"choices": [{"delta": {"content": piece}}]} for piece in re.split(r"(?<= )", reply)]
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return OpenAIBackend("http://teacher.test/v1", "teacher", transport=httpx.MockTransport(handler))


def test_split_is_by_article_and_seeded():
    qs = [{"title": t} for t in ["a", "b", "c", "d", "e", "f", "g", "h"] for _ in range(3)]
    one, two = split_articles(qs), split_articles(list(reversed(qs)))
    assert one == two and len(one["eval"]) == 2 and not set(one["eval"]) & set(one["train"])


@needs_shared
async def test_checked_answers_and_abstentions(settings, questions, tmp_path):
    rows = [json.loads(x) for x in questions.read_text().splitlines()]
    answers = {q["question"].strip(): q["answers"][0] for q in rows}  # the prompt has it stripped
    train = split_articles(rows)["train"]
    wrong = next(q["question"] for q in rows if q["title"] in train)  # cites a source it was not given
    out = tmp_path / "data"
    summary = await distill(
        settings,
        questions,
        out,
        teacher=scripted_teacher(answers, cite_wrong={wrong.strip()}),
        teacher_name="teacher",
        n=20,
        unanswerable=20,
        progress=False,
    )
    split = json.loads((out / "split.json").read_text())
    kept = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert {k["article"] for k in kept} <= set(split["train"])  # nothing from the evaluation articles
    assert summary["answers"] == sum(k["kind"] == "answer" for k in kept) > 0
    for k in kept:
        assert k["messages"][0]["role"] == "system" and k["messages"][-1] == {
            "role": "assistant",
            "content": k["target"],
        }
        if k["kind"] == "abstain":
            assert k["target"] == ABSTENTION
            assert k["article"].replace("_", " ") not in k["messages"][1]["content"].split("Question:")[0]
    (why,) = [r["why"] for r in rejected if r["question"] == wrong and r["kind"] == "answer"]
    assert why == "cites a source it was not given"
    assert wrong not in {k["question"] for k in kept if k["kind"] == "answer"}
    card = (out / "CARD.md").read_text()
    assert "CC BY-SA 4.0" in card and "What was filtered out" in card and split["eval"][0] in card


def test_check_names_each_reason():
    from answer_engine.passages import Passage, SourceDoc

    q = {"title": "Warsaw", "answers": ["Nobel Prize"], "paragraph_index": 0}
    good = SourceDoc(
        n=1, url="u", title="Warsaw", passages=[Passage(page=0, text="She won the Nobel Prize.")]
    )
    other = SourceDoc(n=2, url="v", title="Paris", passages=[Passage(page=1, text="Paris is in France.")])
    sources = {1: good, 2: other}
    assert check(q, "The Nobel Prize [1].", sources, {}) is None
    assert check(q, "The Nobel Prize.", sources, {}) == "no citation"
    assert check(q, "A medal [1].", sources, {}) == "no reference answer in it"
    assert "does not hold" in check(q, "The Nobel Prize [2].", sources, {})
    assert check(q, "The Nobel Prize [7].", sources, {}) == "cites a source it was not given"
    assert "abstained" in check(q, "I could not find the answer in the sources.", sources, {})


@needs_shared
@pytest.mark.model
def test_cli_with_the_real_llama_cpp_server(settings, questions, tmp_path, monkeypatch, capsys, llama_server):
    monkeypatch.setenv("AE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AE_RETRIEVAL__DENSE_WEIGHT", "0")
    out = tmp_path / "real"
    argv = [
        "distill",
        "--teacher-url",
        llama_server,
        "--teacher-model",
        "smollm2",
        "--questions",
        str(questions),
    ]
    assert (
        main([*argv, "--n", "2", "--unanswerable", "1", "--max-tokens", "24", "--out", str(out), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["teacher"] == "smollm2" and summary["abstentions"] == 1
    assert summary["answers"] + summary["rejected"] >= 2  # SmolLM2's answers are mostly rejected: see why
    assert (out / "CARD.md").exists() and (out / "rejected.jsonl").exists()
