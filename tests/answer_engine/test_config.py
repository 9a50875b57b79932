import pytest

from answer_engine.config import ConfigError, load_settings


def test_defaults_from_toml():
    s = load_settings()
    assert s.server.port == 8000 and s.search.providers == ["local"]
    assert s.generation.model == "qwen2.5-coder-1.5b-instruct-q4_k_m"


def test_environment_overrides_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 9100\n[generation]\nmax_tokens = 64\n")
    monkeypatch.setenv("AE_GENERATION__MAX_TOKENS", "32")
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path / "d"))
    s = load_settings(cfg)
    assert s.server.port == 9100
    assert s.generation.max_tokens == 32
    assert s.data_dir == tmp_path / "d"


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_settings(bad)
    bad.write_text("[server]\nport = 0\n")
    with pytest.raises(ConfigError, match="port"):
        load_settings(bad)
    bad.write_text("[nonsense]\nx = 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        load_settings(bad)


def test_production_example_is_a_valid_config():
    from answer_engine.config import REPO_ROOT

    s = load_settings(REPO_ROOT / "configs" / "production.example.toml")
    assert s.generation.backend == "trtllm" and s.search.providers == ["searxng", "brave"]
