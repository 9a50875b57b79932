"""The shared PostgreSQL index measured: `eval qa --provider postgres` and `bench --postgres`, small,
against the real PostgreSQL on 127.0.0.1 (no embeddings: dense ranking is off in the test settings)."""

import json

import pytest

from answer_engine.cli import main
from answer_engine.pgindex import PostgresIngestor

QUESTIONS = [
    {
        "id": "a",
        "title": "Warsaw",
        "question": "What was Maria Curie the first female recipient of?",
        "answers": ["Nobel Prize"],
    },
    {
        "id": "b",
        "title": "Warsaw",
        "question": "What year was Casimir Pulaski born in Warsaw?",
        "answers": ["1745"],
    },
    {
        "id": "c",
        "title": "Nikola Tesla",
        "question": "Where did Tesla work in Paris?",
        "answers": ["Continental Edison"],
    },
]


@pytest.fixture
def env(settings, monkeypatch, pg_url, pg_schema):
    monkeypatch.setenv("AE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AE_RETRIEVAL__DENSE_WEIGHT", "0")
    monkeypatch.setenv("AE_SEARCH__POSTGRES_URL", pg_url)
    monkeypatch.setenv("AE_SEARCH__POSTGRES_SCHEMA", pg_schema)


@pytest.fixture
def questions(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(q) for q in QUESTIONS))
    return f


def test_eval_qa_on_the_postgres_index(env, pg_url, pg_schema, questions, tmp_path, capsys):
    PostgresIngestor(pg_url, schema=pg_schema).sync([])  # the shipped corpus
    args = [
        "eval",
        "qa",
        "--questions",
        str(questions),
        "--no-generate",
        "--json",
        "--report",
        str(tmp_path / "r"),
    ]
    assert main([*args, "--provider", "postgres"]) == 0
    pg = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    assert pg["recall_at_5"] == local["recall_at_5"] == 1.0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["config"]["provider"] == "local"


def test_eval_qa_refuses_sets_that_need_their_own_corpus(env, tmp_path, capsys):
    hotpot = tmp_path / "hotpot.jsonl"  # HotpotQA-shaped: the record brings its own paragraphs
    hotpot.write_text(json.dumps({**QUESTIONS[0], "context": [["Warsaw", ["Curie won the Nobel Prize."]]]}))
    assert main(["eval", "qa", "--questions", str(hotpot), "--no-generate", "--provider", "postgres"]) != 0
    assert "--provider local" in capsys.readouterr().err


def test_bench_postgres_scales(env, pg_url, pg_schema, questions, tmp_path, capsys):
    report = tmp_path / "bench"
    argv = ["bench", "--postgres", "--scales", "1,3", "--questions", str(questions), "--n", "3", "--json"]
    assert main([*argv, "--report", str(report)]) == 0
    out = json.loads(capsys.readouterr().out)
    one, three = out["results"]["postgres 1x"], out["results"]["postgres 3x"]
    assert three["passages"] == 3 * one["passages"] and three["pages"] == 3 * one["pages"]
    assert one["recall"] == out["results"]["on-disk 1x"]["recall"] == 1.0 and three["recall"] == 1.0
    assert out["replicas"]["queries"] == 6 and out["replicas"]["same_results"] is True
    assert (report / "README.md").exists() and (report / "latency-by-scale.png").exists()
    import psycopg

    with psycopg.connect(pg_url) as conn:  # the benchmark's schemas are gone afterwards
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"{pg_schema}_scale%",)
        )
        assert left.fetchone()[0] == 0
