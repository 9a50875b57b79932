"""Shared fixtures. Fakes stand at the edges only: a scripted generation backend; everything else
(index, page store, extraction, passage ranking, citations, the app) is the real code."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from answer_engine.backends.base import Backend, BackendError, ChatMessage, GenerationParams
from answer_engine.config import Settings, default_data_dir, load_settings
from answer_engine.ingest import Ingestor
from answer_engine.models import is_installed, model_file
from answer_engine.passages import Passage, SourceDoc

TEST_MODEL = "smollm2-135m-instruct-q4_1"


# how the compare stage's one-thing questions end (answer_engine/stages/compare.py)
COMPARE_ENDINGS = ("Reply with Yes or No only.", "Reply with the date only.", "in a few words.")


class FakeBackend(Backend):
    """Streams a scripted answer piece by piece; can fail mid-stream or hang; records what it saw."""

    name = "fake"

    def __init__(
        self,
        pieces: list[str] | None = None,
        *,
        fail_after: int | None = None,
        delay: float = 0.0,
        hang: bool = False,
        related: list[str] | None = None,
        verdicts: list[str] | None = None,
        plans: list[str] | None = None,
        plan_delay: float = 0.0,
        compares: list[str] | None = None,
    ) -> None:
        self.pieces = pieces if pieces is not None else ["Hello", " world."]
        self.related = related  # lines to answer the related-questions prompt with
        self.verdicts = (
            list(verdicts) if verdicts is not None else None
        )  # answers to fact checks; "yes" when out
        self.checks: list[str] = []  # the fact-check questions it was asked
        # replies to the plan stage's prompts (rewrite, next search); when out: the question
        # unchanged for a rewrite, DONE for a next search
        self.plans = list(plans) if plans is not None else []
        self.plan_prompts: list[list[ChatMessage]] = []
        self.plan_delay = plan_delay
        # replies to the compare stage's one-thing questions; when out: nothing (the check decides nothing)
        self.compares = list(compares) if compares is not None else []
        self.compare_prompts: list[str] = []
        self.fail_after = fail_after
        self.delay = delay
        self.hang = hang
        self.calls: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []
        self.closed = 0
        self.emitted = 0
        self.warmed: list[list[ChatMessage]] = []  # prompts it was asked to evaluate ahead of time

    async def warm_prefix(self, messages: list[ChatMessage]) -> None:
        self.warmed.append(messages)

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        if (
            "Answer with one word, yes or no." in messages[-1].content
            or "Copy, word for word" in messages[-1].content
        ):
            self.checks.append(messages[-1].content)  # the verify stage's question
            yield self.verdicts.pop(0) if self.verdicts else "yes"
            return
        if messages[-1].content.endswith(COMPARE_ENDINGS):
            self.compare_prompts.append(messages[-1].content)
            if self.compares:
                yield self.compares.pop(0)
            return
        if messages[0].content.startswith(("You rewrite the last question", "You plan web searches")):
            self.plan_prompts.append(messages)
            if self.plan_delay:
                await asyncio.sleep(self.plan_delay)
            if self.plans:
                yield self.plans.pop(0)
            elif "Last question: " in messages[-1].content:
                yield messages[-1].content.split("Last question: ")[1].split("\n")[0]
            else:
                yield "DONE"
            return
        self.calls.append(messages)
        self.params.append(params)
        asks_related = "follow-up questions" in messages[-1].content
        pieces = ["\n".join(self.related)] if asks_related and self.related is not None else self.pieces
        try:
            for i, piece in enumerate(pieces):
                if self.fail_after is not None and i >= self.fail_after:
                    raise BackendError("model crashed")
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.emitted += 1
                yield piece
            if self.hang:
                await asyncio.sleep(3600)
        finally:
            self.closed += 1

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def info(self) -> dict[str, Any]:
        return {"backend": self.name}


@pytest.fixture
def fake_backend_cls() -> type[FakeBackend]:
    return FakeBackend


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the default corpus indexed once per session (the build takes seconds)."""
    d = tmp_path_factory.mktemp("data")
    Ingestor(d).ensure()
    return d


@pytest.fixture
def settings(tmp_path: Path, shared_data_dir: Path) -> Settings:
    """Default settings on a private copy of the session's index, BM25-only passage ranking:
    embedding the whole corpus takes a minute, so the hybrid path has tests of its own."""
    d = tmp_path / "data"
    shutil.copytree(shared_data_dir, d)
    return load_settings(data_dir=d, retrieval={"dense_weight": 0.0})


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    """The real SmolLM2-135M GGUF, pulled by the test command's set-up (make test)."""
    data_dir = Path(os.environ.get("AE_DATA_DIR") or default_data_dir())
    if not is_installed(data_dir, TEST_MODEL):
        pytest.fail(
            f"the test model is not installed in {data_dir}; run `make test` (or "
            f"`.venv/bin/answer-engine models pull {TEST_MODEL}`) first"
        )
    return model_file(data_dir, TEST_MODEL)


@pytest.fixture(scope="session")
def llama_server(test_model_path, tmp_path_factory):
    """The base URL of llama-cpp-python's own OpenAI-compatible server serving SmolLM2-135M on
    127.0.0.1 (a real peer for the openai backend, and a teacher for distill)."""
    import contextlib
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("llama-server") / "stderr.log").open(
        "w+b"
    )  # a pipe would fill and block it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(test_model_path),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def serve():
    """serve(app) -> base URL of a real server on 127.0.0.1; stopped after the test."""
    from answer_engine.evaluation.server import ServerThread

    servers: list[ServerThread] = []

    def start(app: Any) -> str:
        server = ServerThread(app, graceful_s=1.0)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


# ----------------------------------------------------------------------------- a little web on 127.0.0.1

from answer_engine.evaluation.littleweb import little_web_app  # noqa: E402


@pytest.fixture
def little_web(serve) -> Any:
    """(base URL, app) of the little web, served by a real uvicorn on 127.0.0.1."""
    app = little_web_app()
    return serve(app), app


# --------------------------------------------------------------------- Redis, and a proxy to cut it off

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def redis_url() -> str:
    if not redis_available():
        pytest.skip("LOUD SKIP: no Redis at 127.0.0.1:6379 (CI and every machine should have one)")
    return REDIS_URL


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a real service; stop() drops every connection and
    refuses new ones (the service "goes down"), start() brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        import socket

        self.target_port = target_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self.writers |= {client_w, up_w}
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self.writers):
                w.close()
            self.writers.clear()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def redis_proxy(redis_url):
    proxy = TcpProxy(6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def tcp_proxy():
    """tcp_proxy(port) -> a started TcpProxy to 127.0.0.1:port; all stopped after the test."""
    proxies: list[TcpProxy] = []

    async def start(port: int) -> TcpProxy:
        proxy = TcpProxy(port)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


# ----------------------------------------------------------------------------- a tiny Hugging Face checkpoint

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_TEXT = [
    "The Moon pulls the oceans and makes the tides rise and fall twice a day.",
    "Paris is the capital of France. Red, blue and yellow are primary colors.",
    "The quick brown fox jumps over the lazy dog. Glaciers are rivers of ice.",
    "Answer the question using only the sources. Cite each sentence like [1].",
]


def build_tiny_checkpoint(path: Path, *, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer trained here and a ChatML template: a real
    Hugging Face checkpoint of about 100k parameters, built from a config in seconds, no download."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        TINY_TEXT * 4,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML
    path.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
        initializer_range=initializer_range,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path, safe_serialization=True)
    GenerationConfig(
        eos_token_id=[fast.eos_token_id], bos_token_id=fast.bos_token_id, pad_token_id=fast.pad_token_id
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def fake_tensorrt_llm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """NVIDIA's tensorrt_llm replaced by the contract fake in tests/fakes (this machine has no GPU)."""
    import sys

    for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    import tensorrt_llm

    yield tensorrt_llm
    for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
        sys.modules.pop(name, None)


# ----------------------------------------------------------------------------- PostgreSQL

POSTGRES_URL = os.environ.get("AE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        pytest.skip(
            f"LOUD SKIP: no PostgreSQL at {POSTGRES_URL} (CI and every machine should have one): {exc}"
        )
    return POSTGRES_URL


@pytest.fixture
def pg_schema(pg_url: str):
    """A schema of its own for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"ae_test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def source_doc(n: int, title: str, text: str) -> SourceDoc:
    """A numbered source of one passage, for the stage tests that build their sources by hand."""
    return SourceDoc(n=n, url=f"https://w.example/{n}", title=title, passages=[Passage(page=n, text=text)])
