import json

import pytest

from answer_engine.cli import main


@pytest.fixture
def data_env(settings, monkeypatch):
    monkeypatch.setenv("AE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AE_RETRIEVAL__DENSE_WEIGHT", "0")  # no minute-long corpus embedding here
    return settings.data_dir


def test_index_a_user_folder_then_remove_it(data_env, tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The glorbnik festival is held every June in the town of Pellworth.")
    assert main(["index", "--json", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pages"] == 49 and str(folder) in info["sources"]
    assert main(["index", "--remove", str(folder)]) == 0
    assert "48 pages" in capsys.readouterr().out


def test_index_missing_path_is_an_error(data_env, tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_models_list(data_env, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "qwen2.5-coder-1.5b-instruct-q4_k_m" in out and "smollm2-135m-instruct-q4_1" in out


def test_models_pull_unknown(data_env, capsys):
    assert main(["models", "pull", "nonexistent-model"]) == 1
    assert "unknown model" in capsys.readouterr().err


def test_ask_needs_a_known_or_existing_model(data_env, capsys):
    assert main(["ask", "--model", "no-such-model", "What is oxygen?"]) == 1
    assert "neither a file nor a known model" in capsys.readouterr().err


def test_ask_with_a_question_too_long_is_a_clear_error(data_env, capsys):
    assert main(["ask", "x" * 3000]) == 1
    assert "invalid question" in capsys.readouterr().err
