"""Settings: configs/default.toml (or --config FILE), overridden by AE_* environment variables.

Nothing is read at import time: call :func:`load_settings` when the app or command starts.
Precedence, highest first: environment (AE_SECTION__KEY), the TOML file, the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.toml"


# The request limits, stated once. The API's schema states them (request.py); the configuration may
# only lower them (ServerSettings, GenerationSettings below), and request.check enforces the result.
MAX_QUERY_CHARS = 2000
MAX_HISTORY_MESSAGES = 50
MAX_MESSAGE_CHARS = 20000
MAX_TOKENS_CEILING = 2048
MAX_STOP_SEQUENCES = 4


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "answer-engine"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # These may only lower the limits the API's schema states (MAX_* above).
    max_query_chars: int = Field(MAX_QUERY_CHARS, ge=1, le=MAX_QUERY_CHARS)
    max_history_messages: int = Field(MAX_HISTORY_MESSAGES, ge=0, le=MAX_HISTORY_MESSAGES)
    max_message_chars: int = Field(MAX_MESSAGE_CHARS, ge=1, le=MAX_MESSAGE_CHARS)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    uploads: bool = Field(True, description="POST /v1/documents may add files and URLs to the index.")
    max_upload_bytes: int = Field(
        10_000_000, ge=1024, description="The body limit of POST /v1/documents (a file, or a page read)."
    )
    max_in_flight: int = Field(
        4, ge=1, description="Answers generating or queued for the model; more get a 503."
    )
    retry_after_s: int = Field(10, ge=1)
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, answers in flight get this long to finish."
    )
    # API keys as sha256 hex digests (`answer-engine keys new` makes one). Empty: no key needed.
    api_key_hashes: list[str] = Field(default_factory=list)
    rate_limit_per_min: int = Field(0, ge=0, description="Requests per minute per key (or per IP); 0 = off.")
    rate_limit_burst: int = Field(10, ge=1)
    # Keys for POST /admin/reload (engine-build promote/rollback), as sha256 hex. Empty: no admin API.
    admin_key_hashes: list[str] = Field(default_factory=list)

    @field_validator("api_key_hashes", "admin_key_hashes")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for h in value:
            if len(h) != 64 or any(c not in "0123456789abcdefABCDEF" for c in h):
                raise ValueError(
                    "api_key_hashes must be sha256 hex digests of the keys, never the keys themselves"
                )
        return [h.lower() for h in value]

    web_dir: Path = REPO_ROOT / "web"


ProviderName = Literal["local", "postgres", "searxng", "brave", "tavily", "google", "ddgs"]


class SearchSettings(BaseModel):
    # Several at once are queried in parallel and fused. A web provider without its key or URL is
    # not enabled (`answer-engine providers` says why). Keys may also come from the environment
    # under their usual names: SEARXNG_URL, BRAVE_API_KEY, TAVILY_API_KEY, GOOGLE_API_KEY + GOOGLE_CSE_ID.
    providers: list[ProviderName] = Field(default_factory=lambda: ["local"], min_length=1)
    include_default_corpus: bool = True
    max_results: int = Field(6, ge=1, le=20)
    deadline_s: float = Field(6.0, gt=0, description="How long providers get; late ones are left out.")
    cache_ttl_s: float = Field(300.0, gt=0, description="Search results are cached this long.")
    breaker_failures: int = Field(3, ge=1, description="Failures in a row before a provider is skipped.")
    breaker_cooldown_s: float = Field(60.0, gt=0, description="How long a failing provider is skipped.")
    searxng_url: str = ""
    brave_api_key: str = ""
    brave_base_url: str = "https://api.search.brave.com"
    tavily_api_key: str = ""
    tavily_base_url: str = "https://api.tavily.com"
    google_api_key: str = ""
    google_cx: str = ""
    google_base_url: str = "https://www.googleapis.com"
    ddgs_region: str = "us-en"
    # The shared index in PostgreSQL (providers = ["postgres"]): written by `answer-engine index --to
    # postgres`, read by every replica. The URL may also come from DATABASE_URL.
    postgres_url: str = ""
    postgres_schema: str = Field("answer_engine", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    postgres_pool: int = Field(4, ge=1, le=64, description="Connections per replica.")
    postgres_timeout_s: float = Field(5.0, gt=0, description="Per query, and to get a connection.")


class FetchSettings(BaseModel):
    timeout_s: float = Field(10.0, gt=0, description="Total time for one page, redirects included.")
    connect_timeout_s: float = Field(5.0, gt=0)
    max_concurrency: int = Field(4, ge=1, description="Pages read at once for one question.")
    max_connections: int = Field(32, ge=1, description="Open connections for the whole process.")
    per_host: int = Field(4, ge=1, description="Requests at once to one host.")
    max_bytes: int = Field(5_000_000, ge=1024, description="Bodies larger than this are refused.")
    # Ranges exempt from the SSRF guard (CIDR), e.g. an intranet wiki. Empty: only public addresses.
    allow_networks: list[str] = Field(default_factory=list)
    cache_pages: int = Field(256, ge=1, description="Extracted pages kept in memory.")
    cache_ttl_s: float = Field(600.0, gt=0)

    @field_validator("allow_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            ipaddress.ip_network(net, strict=False)  # ValueError: a clear configuration error
        return value


class RetrievalSettings(BaseModel):
    chunk_words: int = Field(90, ge=20, le=1000)
    max_passages: int = Field(5, ge=1, le=20)
    context_tokens: int = Field(700, ge=64)
    focus: bool = Field(
        False,
        description="Keep the best passage whole and cut the others down to their sentences that best "
        "match the question, within context_tokens (450 with focus: 13% fewer prompt tokens; measured "
        "in docs/reports/speed, off by default: it did not hold accuracy on SQuAD).",
    )
    min_relative_score: float = Field(0.5, ge=0.0, le=1.0)
    min_relevance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Abstain without the model when no passage's embedding similarity to the question "
        "reaches this (needs dense_weight > 0); 0 = never.",
    )
    min_answerability: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Abstain without the model when the answerability of the passages (the mean of the "
        "best passage's embedding similarity to the question and its share of the question's terms, "
        "weighed by their rarity in the index) is under this; 0 = never. The default config's 0.38 was "
        "chosen on a development set kept apart from every reported one (docs/reports/gate).",
    )
    dense_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="Share of embedding similarity in passage scores; 0 = BM25 only."
    )
    embed_runtime: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="What runs the embedding model: auto = the ONNX export set-up made (onnxruntime, "
        "loads in ~0.4 s) when it is there, else sentence-transformers (torch, ~8 s to import); the "
        "vectors are the same.",
    )


class GenerationSettings(BaseModel):
    backend: Literal["llamacpp", "extractive", "openai", "transformers", "trtllm", "router"] = "llamacpp"
    # llamacpp: a model name or .gguf path; transformers/trtllm: a checkpoint or engine directory;
    # openai: the model id the server serves.
    model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    # An engine-build output root: when set, the backend is loaded from its `current` artifact
    # (and swapped by `engine-build promote/rollback` through POST /admin/reload).
    artifacts_root: str = ""
    lora: str = Field(
        "", description="llamacpp: a GGUF LoRA adapter applied at load (`engine-build lora-to-gguf`)."
    )
    base_url: str = Field(
        "", description="openai backend: e.g. http://127.0.0.1:8001/v1 (trtllm-serve, vLLM)."
    )
    api_key: str = Field("", description="openai backend: the server's key (or OPENAI_API_KEY).")
    tokenizer_dir: str = ""
    max_batch_size: int = Field(16, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    n_ctx: int = Field(4096, ge=512)
    n_threads: int = Field(0, ge=0)
    prefix_states: int = Field(
        4,
        ge=0,
        le=64,
        description="llamacpp: KV states of recent prompts kept so a new prompt reuses their shared "
        "prefix (the system prompt) after other prompts came between; 0 = off.",
    )
    weight_repack: Literal["auto", "on", "off"] = Field(
        "auto",
        description="llamacpp: let llama.cpp repack the weights at load for its CPU kernels. auto = off "
        "on an AVX-512 build (prompt ~1.5x faster there with longer prefill chunks, decode ~0.8x), on "
        "elsewhere (llama.cpp's default). docs/reports/repack.",
    )
    prefill_chunk: int = Field(
        0,
        ge=0,
        le=2048,
        description="llamacpp: prompt tokens evaluated between looks at the cancel flag. 0 = auto: 256 "
        "on an AVX-512 build with weights as stored (longer batches run faster there), else 64.",
    )
    disk_prefix_state: bool = Field(
        True,
        description="llamacpp: keep the warmed answer-prompt start on disk (<data_dir>/cache/prompt-states, "
        "a few MB) so a fresh process (answer-engine ask, a restarted server) restores it instead of "
        "evaluating the system prompt again.",
    )
    source_urls: bool = Field(
        True,
        description="Each source line in the prompt names its page's URL (~15 tokens a source); "
        "false: title and text only (the answer cites by number; the URL still travels in citations).",
    )
    question_first: bool = Field(
        False,
        description="The question is said before the sources as well as after them (~15 tokens more).",
    )
    best_source_last: bool = Field(
        False,
        description="The sources are listed worst-ranked first, so the best-ranked one ([1]) stands "
        "next to the question (numbers unchanged).",
    )
    max_tokens: int = Field(256, ge=1, le=8192)
    max_tokens_ceiling: int = Field(
        MAX_TOKENS_CEILING, ge=1, le=MAX_TOKENS_CEILING, description="The most a request may ask for."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    timeout_s: float = Field(300.0, gt=0)


class CitationSettings(BaseModel):
    support_threshold: float = Field(0.5, ge=0.0, le=1.0)


class VerifySettings(BaseModel):
    """The verify stage: the answer model asked, sentence by sentence, whether the cited source states it."""

    enabled: bool = True
    mode: Literal["facts", "yesno", "quote"] = Field(
        "facts",
        description="yesno: the answer model says yes/no per sentence; quote: it copies the sentence "
        "that states it, which must then hold the claim's facts; facts: no model call, the cited "
        "source's sentence closest to the claim must hold the claim's numbers, number words and names "
        "and not negate it.",
    )
    max_sentences: int = Field(
        4, ge=1, le=20, description="Sentences checked per answer; later ones are kept unchecked."
    )
    min_question_coverage: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="The evidence of the answer's kept sentences (each one's closest source sentence, "
        "its neighbours and its page's title) must hold this share of the question's terms, weighed "
        "by rarity, or the answer is not supported: 'Beijing is the capital of Mongolia [1]' cited "
        "to a page on Beijing that never names Mongolia. 0 = no such check.",
    )
    question_coverage_window: int = Field(
        1,
        ge=0,
        le=5,
        description="The sentences on each side of a kept sentence's closest source sentence that count "
        "as its evidence for min_question_coverage.",
    )
    timeout_s: float = Field(
        30.0, gt=0, description="For all checks of one answer; unchecked sentences are kept."
    )


class PlanSettings(BaseModel):
    """The plan stage: the follow-up rewrite and the searches of multi-step (pro) answers."""

    search_type: Literal["fast", "pro", "auto"] = Field(
        "auto",
        description="fast: one search; pro: search, read, let the model ask for the missing fact, search "
        "again; auto: pro for questions shaped like multi-hop ones. A request's search_type wins.",
    )
    rewrite: bool = Field(
        True,
        description="In a thread, the model rewrites the question into a standalone search query "
        "(false: a short follow-up is searched with the previous question glued in front).",
    )
    max_searches: int = Field(3, ge=1, le=6, description="Searches per pro answer, the first included.")
    min_searches: int = Field(
        1,
        ge=1,
        le=6,
        description="pro's fewest searches (a comparison's aside): a DONE or a repeated search before "
        "this many is asked again once, the model told that one search is not enough (1: off; 2 is not "
        "measured yet).",
    )
    max_tokens: int = Field(
        2500, ge=0, description="Prompt + completion tokens of the plan's model calls per answer."
    )
    deadline_s: float = Field(
        40.0, gt=0, description="For all of a pro answer's extra steps (model calls, searches, reading)."
    )
    step_timeout_s: float = Field(20.0, gt=0, description="For one model call of the plan stage.")
    compare: bool = Field(
        True,
        description="pro: a comparison's two things are also checked one at a time (a short model call "
        "each over that thing's sources: yes/no, a value or a date) and the engine's verdict goes into "
        "the answer prompt (stages/compare.py). Two calls at most, each within step_timeout_s and the "
        "deadline; a comparison's searches need no model call, so these are its only plan calls.",
    )


# Credentials also read from the environment under the names their own tools use; a value set in
# the file or as AE_SECTION__KEY wins. This module is the only one that reads the environment.
USUAL_ENV_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("search", "searxng_url"): ("SEARXNG_URL",),
    ("search", "postgres_url"): ("DATABASE_URL",),
    ("search", "brave_api_key"): ("BRAVE_API_KEY",),
    ("search", "tavily_api_key"): ("TAVILY_API_KEY",),
    ("search", "google_api_key"): ("GOOGLE_API_KEY",),
    ("search", "google_cx"): ("GOOGLE_CSE_ID", "GOOGLE_CX"),
    ("generation", "api_key"): ("OPENAI_API_KEY",),
}


class RouterSettings(BaseModel):
    """generation.backend = "router": a local backend answers, a stronger one takes the hard questions.

    ``local`` and ``strong`` are generation settings laid over [generation] (e.g. strong =
    {backend = "openai", base_url = "https://api.example.com/v1", model = "big-model"}). The policy:
    escalate before generating when retrieval is not confident (the best passage's embedding
    similarity under ``escalate_below_relevance``), and after it when verification finds the local
    answer not supported (``escalate_unsupported``: the local answer is then held back until it is
    checked). A failing strong backend falls back to the local answer, and the answer says so."""

    local: dict[str, Any] = Field(default_factory=lambda: {"backend": "llamacpp"})
    strong: dict[str, Any] = Field(default_factory=dict)
    escalate_below_relevance: float = Field(0.0, ge=0.0, le=1.0, description="0 = never on this signal.")
    escalate_unsupported: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AE_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AE_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis for shared rate limits (and caches); none = in-process.",
    )
    server: ServerSettings = ServerSettings()
    search: SearchSettings = SearchSettings()
    fetch: FetchSettings = FetchSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    citations: CitationSettings = CitationSettings()
    verify: VerifySettings = VerifySettings()
    plan: PlanSettings = PlanSettings()
    router: RouterSettings = RouterSettings()

    @model_validator(mode="after")
    def _usual_env_names(self) -> Settings:
        for (section, key), names in USUAL_ENV_NAMES.items():
            part = getattr(self, section)
            if not getattr(part, key):
                setattr(part, key, next((os.environ[n] for n in names if os.environ.get(n)), ""))
        return self

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment wins over it.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A configuration file or value that cannot be used."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (default configs/default.toml, or $AE_CONFIG) and the environment."""
    path = Path(config_file or os.environ.get("AE_CONFIG") or DEFAULT_CONFIG)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif config_file is not None:
        raise ConfigError(f"config file not found: {path}")
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return Settings(**data)
    except Exception as exc:  # pydantic.ValidationError: one clear message
        raise ConfigError(f"invalid configuration ({path}): {exc}") from exc
