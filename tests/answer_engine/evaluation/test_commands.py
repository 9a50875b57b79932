"""The eval and bench commands end to end, small: real pipeline, real SmolLM2 where a model is needed."""

import json
import shutil
from pathlib import Path

import pytest

from answer_engine.cli import main
from answer_engine.config import load_settings

SHARED = Path(__file__).resolve().parents[4] / "shared" / "evaldata"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/evaldata is not beside the repo")


@pytest.fixture
def env(settings, monkeypatch, test_model_path):
    monkeypatch.setenv("AE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AE_RETRIEVAL__DENSE_WEIGHT", "0")
    monkeypatch.setenv("AE_GENERATION__MODEL", str(test_model_path))
    monkeypatch.setenv("AE_GENERATION__MAX_TOKENS", "24")


def squad_file(tmp_path, n=3):
    rows = [
        {
            "id": "a",
            "question": "What was Maria Curie the first female recipient of?",
            "answers": ["Nobel Prize"],
        },
        {"id": "b", "question": "What year was Casimir Pulaski born in Warsaw?", "answers": ["1745"]},
        {"id": "c", "question": "What is the chemical symbol of oxygen?", "answers": ["O"]},
    ][:n]
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    return f


def test_eval_qa_no_generate_json_and_report(env, tmp_path, capsys):
    report = tmp_path / "r"
    assert (
        main(
            [
                "eval",
                "qa",
                "--questions",
                str(squad_file(tmp_path)),
                "--no-generate",
                "--json",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"questions", "recall_at_1", "recall_at_5", "searches_per_question", "pro_share"}
    assert out["questions"] == 3 and out["searches_per_question"] == 1.0 and out["pro_share"] == 0.0
    assert out["recall_at_5"] >= 2 / 3
    assert {p.name for p in report.iterdir()} >= {
        "summary.json",
        "summary.md",
        "questions.jsonl",
        "latency-per-stage.png",
        "quality.png",
    }


@pytest.mark.model
def test_eval_qa_generate(env, tmp_path, capsys):
    assert (
        main(
            [
                "eval",
                "qa",
                "--questions",
                str(squad_file(tmp_path, 2)),
                "--json",
                "--report",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [
        "questions",
        "recall_at_1",
        "recall_at_5",
        "searches_per_question",
        "pro_share",
        "exact_match",
        "f1",
        "contains",
        "accuracy",
        "hallucination_rate",
        "crag_score",
        "citation_precision",
        "citation_precision_lexical",
        "citation_coverage",
        "abstain_rate",
        "latency_ms_p50",
        "latency_ms_p95",
        "ttft_ms_p50",
    ]
    assert out["latency_ms_p50"] > 0


@needs_shared
def test_eval_qa_hotpot_indexes_its_own_paragraphs(env, tmp_path, capsys):
    src = SHARED / "hotpotqa" / "questions.jsonl"
    f = tmp_path / "hotpot.jsonl"
    f.write_text("\n".join(src.read_text().splitlines()[:4]))
    assert (
        main(
            ["eval", "qa", "--questions", str(f), "--no-generate", "--json", "--report", str(tmp_path / "r")]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == 4 and out["recall_at_5"] > 0


@needs_shared
def test_eval_extraction_on_a_subset(tmp_path, capsys):
    data = tmp_path / "ex"
    (data / "html").mkdir(parents=True)
    truth = json.loads((SHARED / "extraction" / "ground-truth.json").read_text())
    ids = sorted(truth)[:4]
    for i in ids:
        shutil.copy(SHARED / "extraction" / "html" / f"{i}.html.gz", data / "html")
    (data / "ground-truth.json").write_text(json.dumps({i: truth[i] for i in ids}))
    assert main(["eval", "extraction", "--data", str(data), "--json", "--report", str(tmp_path / "r")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"pages", "precision", "recall", "f1", "ms_per_page"} and out["pages"] == 4
    assert out["f1"] > 0.8


def test_eval_errors_are_clear(env, tmp_path, capsys):
    assert main(["eval", "qa", "--questions", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n')
    assert main(["eval", "qa", "--questions", str(bad)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert main(["eval", "extraction", "--data", str(tmp_path)]) == 1


@pytest.mark.model
def test_bench_json_and_report(env, tmp_path, capsys):
    report = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--questions",
                str(squad_file(tmp_path)),
                "--n",
                "2",
                "--concurrency",
                "1,2",
                "--max-tokens",
                "8",
                "--json",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert {"overhead_ratio", "decode_ratio", "ttft_ms_p50", "tokens_per_s", "prompt_tokens_p50"} <= set(out)
    retrieval = load_settings().retrieval  # the report says which passage budget it ran with
    assert (out["passage_budget"], out["focus"]) == (retrieval.context_tokens, retrieval.focus)
    assert out["overhead_ratio"] > 0 and out["decode_ratio"] > 0  # values are for the report, not for a test
    assert [r["streams"] for r in out["concurrency"]] == [1, 2]
    assert all(r["errors"] == 0 for r in out["concurrency"])
    assert {"summary.json", "summary.md", "latency-per-stage.png", "ratios.png", "concurrency.png"} <= {
        p.name for p in report.iterdir()
    }


def test_bench_levers_each_off_and_on_side_by_side(env, tmp_path, capsys):
    report = tmp_path / "levers"
    args = ["bench", "--levers", "--questions", str(squad_file(tmp_path)), "--n", "1", "--cli-runs", "1"]
    assert main([*args, "--max-tokens", "4", "--json", "--report", str(report)]) == 0
    out = json.loads(capsys.readouterr().out)
    passages, prefix, repack = out["levers"]
    assert passages["lever"] == "passages" and passages["questions"] == 1
    # focus sends fewer prompt tokens than whole passages; the prefix lever sends the same prompt twice
    assert passages["on_prompt_tokens_p50"] < passages["off_prompt_tokens_p50"]
    assert prefix["on_prompt_tokens_p50"] == prefix["off_prompt_tokens_p50"]
    rows = [json.loads(line) for line in (report / "rows.jsonl").read_text().splitlines()]
    prefix_rows = [r for r in rows if r["lever"] == "prefix"]
    assert [(r["off"]["restored"], r["on"]["restored"]) for r in prefix_rows] == [(0, 1)]
    # two models side by side: repacked weights with short chunks, stored weights with long ones
    assert repack["lever"] == "repack" and repack["questions"] == 1
    assert repack["on_prompt_tokens_p50"] == repack["off_prompt_tokens_p50"]
    assert repack["on_tokens_per_s_p50"] > 0 and repack["decode_ratio"] > 0
    repack_rows = [r for r in rows if r["lever"] == "repack"]
    assert all(r["off"]["answer"] and r["on"]["answer"] for r in repack_rows)
    assert out["cli"]["runs"] == 1 and out["cli"]["first_token_ms_p50"] > 0
    assert out["cli"]["questions"] == 1 and out["cli"]["rows"][0]["question"] == out["cli"]["question"]
    # each cold-start side in its own fresh process: torch, the ONNX export, and that with the state file
    assert [s["side"] for s in out["cli"]["sides"]] == ["torch", "onnx", "onnx+state"]
    assert out["cli"]["sides"][0]["ratio_to_torch"] == 1.0
    assert list((tmp_path / "data" / "cache" / "prompt-states").glob("*.kv"))  # the warmed start, kept
    assert {"summary.json", "summary.md", "rows.jsonl", "ratios.png"} <= {p.name for p in report.iterdir()}


def test_bench_cli_lever_asks_a_different_question_each_run(env, tmp_path, capsys):
    args = ["bench", "--levers", "--lever", "cli", "--questions", str(squad_file(tmp_path)), "--n", "2"]
    assert main([*args, "--cli-runs", "2", "--json", "--report", str(tmp_path / "r")]) == 0
    cli = json.loads(capsys.readouterr().out)["cli"]
    asked = [row["question"] for row in cli["rows"]]
    assert cli["questions"] == 2 and len(set(asked)) == 2 and asked[0] == cli["question"]
    assert all(row[side] > 0 for row in cli["rows"] for side in ("torch", "onnx", "onnx+state"))


def test_bench_levers_runs_only_the_levers_asked_for(env, tmp_path, capsys):
    args = ["bench", "--levers", "--lever", "repack", "--questions", str(squad_file(tmp_path)), "--n", "1"]
    assert main([*args, "--max-tokens", "4", "--json", "--report", str(tmp_path / "r")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [lv["lever"] for lv in out["levers"]] == ["repack"] and out["cli"] is None


def test_bench_refuses_bad_levels(env, capsys):
    assert main(["bench", "--concurrency", "1,x"]) == 1
    assert main(["bench", "--concurrency", "100"]) == 1


def test_load_test_runs_bounded_and_reports(env, tmp_path, capsys):
    report = tmp_path / "load"
    assert (
        main(
            [
                "load",
                "--streams",
                "4",
                "--duration",
                "2",
                "--questions",
                str(squad_file(tmp_path)),
                "--json",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] > 0 and out["ok"] == out["requests"]
    assert out["lost"] == out["truncated"] == out["error"] == 0
    assert (report / "summary.json").exists()


@needs_shared
@pytest.mark.model
def test_eval_qa_unanswerable_reports_abstention(monkeypatch, test_model_path, tmp_path, capsys):
    """The model named by name, from the real data dir, while the index lives in a private one
    (the set leaves articles out): the backend must come from the data dir that holds the model."""
    monkeypatch.setenv("AE_DATA_DIR", str(test_model_path.parent.parent))
    monkeypatch.setenv("AE_RETRIEVAL__DENSE_WEIGHT", "0")
    monkeypatch.setenv("AE_GENERATION__MODEL", "smollm2-135m-instruct-q4_1")
    monkeypatch.setenv("AE_GENERATION__MAX_TOKENS", "16")
    args = [
        "eval",
        "qa",
        "--unanswerable",
        "--questions",
        str(SHARED / "squad" / "questions.jsonl"),
        "--limit",
        "2",
        "--json",
        "--report",
        str(tmp_path / "r"),
    ]
    assert main(args) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == 2 and 0 <= out["abstention_unanswerable"] <= 1
    records = [json.loads(line) for line in (tmp_path / "r" / "questions.jsonl").read_text().splitlines()]
    assert all(r["answerable"] is False and r["outcome"] in ("abstained", "wrong") for r in records)
