"""llama.cpp backend (llama-cpp-python): a GGUF model on the CPU, with the model's own chat template.

llama.cpp is blocking and one model instance is not thread-safe, so every call runs on one
dedicated worker thread; tokens cross into asyncio through a queue. Closing the async iterator
(client gone, stop button, timeout) sets a flag that the worker checks after every token.
llama-cpp-python keeps the previous prompt's evaluated tokens and only evaluates the new
suffix. Other prompts in between (the plan stage's rewrite, related questions) would evict that
prefix, so the backend also keeps the KV state of its last few prompts (``PrefixStates``): a new
prompt restores the one it shares the longest prefix with, and an answer prompt pays only for its
sources and question, not again for the system prompt before them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from answer_engine.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    GenerationParams,
    decode_rate,
    stream_from_thread,
    too_short,
)

# The prompt is evaluated in chunks this long, with a look at the cancel flag between chunks:
# llama.cpp cannot be interrupted inside a decode call, and a whole 512-token batch of the default
# 1.5B model takes ~7 s on 2 AVX2 cores; 64 tokens take under a second.
PREFILL_CHUNK = 64
# With AVX-512 and the weights left as stored (no repacking, below), longer batches are much faster:
# prompt tokens/s of the default model on 2 cores by chunk 64 / 128 / 256 / 512: 112 / 127 / 142 /
# 149 (repacked: ~100 at every length); 256 tokens take ~1.8 s (docs/reports/repack).
PREFILL_CHUNK_AVX512 = 256
# KV states of earlier prompts kept for prefix reuse. One costs ~28 KB per token with the default
# 1.5B model (28 layers x 2 KV heads x 128 x K and V in f16): ~25 MB for an 850-token answer prompt.
PREFIX_STATES = 4
# A restore copies the state back (~10 ms for 25 MB); below this many shared tokens it is not worth it.
MIN_REUSE_TOKENS = 32
# Warmed starts kept on disk (a few MB each: ~120 tokens); a fresh process restores one instead of
# evaluating the system prompt again (~2.7 s on 2 cores). Only the newest few are kept.
DISK_STATES = 8
DISK_MAGIC = b"AEKV1\n"

log = logging.getLogger(__name__)


_load_params_lock = threading.Lock()


def has_avx512() -> bool:
    """Does the llama.cpp build run AVX-512 kernels (set-up builds them where the CPU has them)?"""
    import llama_cpp

    return "AVX512 = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")


def resolve_repack(setting: str) -> bool:
    """generation.weight_repack: "auto" leaves Q4_K weights as stored on an AVX-512 build (prefill
    ~1.5x faster there, decode ~0.8x, load 0.4 s instead of 1 s) and lets llama.cpp repack them
    elsewhere (its default; the alternative is not measured on AVX2)."""
    if setting == "auto":
        return not has_avx512()
    return setting == "on"


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    from llama_cpp import Llama

    return int(Llama.longest_token_prefix(a, b))


def json_grammar(schema: dict[str, Any]) -> Any:
    """llama.cpp's grammar for JSON valid against ``schema`` (llama-cpp-python's converter, a port
    of llama.cpp's json_schema_to_grammar); BackendError naming what it cannot express."""
    import json

    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain exceptions for what it does not support
        raise BackendError(f"llama.cpp cannot turn this schema into a grammar: {exc}") from exc
    return LlamaGrammar.from_string(gbnf, verbose=False)


@dataclass
class SavedState:
    tokens: list[int]
    data: bytes


class PrefixStates:
    """The KV cache of the last few prompts (sequence 0), newest last. ``best`` finds the one that
    shares the longest prefix with a new prompt; the backend restores it and evaluates only the rest."""

    def __init__(self, capacity: int = PREFIX_STATES) -> None:
        self.capacity = capacity
        self.states: list[SavedState] = []
        self.restored = 0  # prompts that started from a saved state, for tests and metrics

    def best(self, ids: Sequence[int]) -> tuple[SavedState | None, int]:
        found, shared = None, 0
        for state in self.states:
            n = common_prefix(state.tokens, ids)
            if n > shared:
                found, shared = state, n
        return found, shared

    def save(self, tokens: list[int], data: bytes) -> None:
        if self.capacity <= 0 or not tokens:
            return
        # a state whose tokens start the new one's adds nothing: the new one serves every prompt it did
        self.states = [s for s in self.states if s.tokens != tokens[: len(s.tokens)]]
        self.states.append(SavedState(tokens, data))
        del self.states[: -self.capacity]

    def clear(self) -> None:
        self.states.clear()


class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        prefill_chunk: int = PREFILL_CHUNK,
        prefix_states: int = PREFIX_STATES,
        lora_path: Path | None = None,
        state_dir: Path | None = None,
        weight_repack: bool | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        # llama.cpp's weight repacking at load (its "extra buffer types"); None: llama.cpp's default (on)
        self.weight_repack = weight_repack
        # where the warmed answer-prompt start is kept between processes (None: not kept)
        self.state_dir = Path(state_dir) if state_dir else None
        self.disk_restored = 0  # warmed starts read back from state_dir, for tests and bench
        self.lora_path = Path(lora_path) if lora_path else None  # a GGUF LoRA adapter applied at load
        self.prefill_chunk = prefill_chunk
        self.prefix_states = PrefixStates(prefix_states)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        self._llm: Any = None
        self._formatter: Any = None
        self._load_lock = threading.Lock()
        self.tokens_generated = 0  # all streams, for metrics and tests
        self._eog: list[int] | None = None

    # -- loading (blocking)

    def load(self) -> None:
        with self._load_lock:
            if self._llm is not None:
                return
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            try:
                with self._model_params():
                    llm = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        lora_path=str(self.lora_path) if self.lora_path else None,
                        verbose=False,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise BackendError(f"{self.model_path} carries no chat template; use an instruct model")
            eos_id, bos_id = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
            self._llm = llm

    @contextlib.contextmanager
    def _model_params(self) -> Iterator[None]:
        """Llama() takes no argument for weight repacking: its default model params are swapped for
        the length of the load (under a lock: another backend may be loading at the same time)."""
        if self.weight_repack is None:
            yield
            return
        import llama_cpp.llama as llama_module

        bindings = llama_module.llama_cpp
        with _load_params_lock:
            default = bindings.llama_model_default_params

            def params() -> Any:
                p = default()
                p.use_extra_bufts = self.weight_repack
                return p

            bindings.llama_model_default_params = params
            try:
                yield
            finally:
                bindings.llama_model_default_params = default

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    # -- prompts

    def _format(self, messages: list[ChatMessage]) -> Any:
        self.load()
        return self._formatter(messages=[m.model_dump() for m in messages])

    def _prompt_ids(self, messages: list[ChatMessage]) -> tuple[list[int], Any]:
        formatted = self._format(messages)
        ids = self._llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        return ids, formatted

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return len(self._prompt_ids(messages)[0])

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def schema_problem(self, schema: dict[str, Any]) -> str | None:
        try:
            json_grammar(schema)
        except BackendError as exc:
            return str(exc)
        return None

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "prefix_states": self.prefix_states.capacity,
            "lora_path": str(self.lora_path) if self.lora_path else None,
        }

    # -- generation

    def _generate(
        self, messages: list[ChatMessage], params: GenerationParams, emit: Any, cancel: threading.Event
    ) -> None:
        ids, formatted = self._prompt_ids(messages)
        if len(ids) + params.max_tokens > self.n_ctx:
            raise BackendError(
                f"prompt of {len(ids)} tokens + max_tokens {params.max_tokens} exceeds n_ctx {self.n_ctx}"
            )
        stop = list(params.stop) + [s for s in (formatted.stop or []) if s]
        grammar = None
        if params.json_schema is not None:
            grammar = json_grammar(params.json_schema)
            stop = [s for s in (formatted.stop or []) if s]  # JSON text may hold our prose stop strings
        if not self._prefill(ids, cancel):
            return
        options = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": stop,
            "stopping_criteria": formatted.stopping_criteria,
            "grammar": grammar,
        }
        try:
            text, made = self._complete(ids, params.max_tokens, options, emit, cancel)
            if too_short(text, params.min_chars) and made < params.max_tokens and grammar is None:
                # The model ended before writing anything ("1" for "1972", or a bare "[1]"): go on from
                # where it stopped, its end-of-turn tokens barred until the floor is met. Only this rare
                # case pays for a logits processor (a Python call per token).
                self._continue(ids, text, params, options, emit, cancel, params.max_tokens - made)
        finally:
            self._save_state()  # after the answer, never before its first token

    def _complete(
        self, ids: list[int], max_tokens: int, options: dict[str, Any], emit: Any, cancel: threading.Event
    ) -> tuple[str, int]:
        """Stream a completion of ``ids``; (the text emitted, tokens generated)."""
        it = self._llm.create_completion(prompt=ids, max_tokens=max_tokens, stream=True, **options)
        pieces: list[str] = []
        made = 0
        try:
            for chunk in it:
                self.tokens_generated += 1
                made += 1
                if cancel.is_set():
                    break
                text = chunk["choices"][0]["text"]
                if text:
                    pieces.append(text)
                    emit(text)
        finally:
            it.close()
        return "".join(pieces), made

    def _continue(
        self,
        ids: list[int],
        text: str,
        params: GenerationParams,
        options: dict[str, Any],
        emit: Any,
        cancel: threading.Event,
        max_tokens: int,
    ) -> None:
        if cancel.is_set():
            return
        import numpy as np
        from llama_cpp import LogitsProcessorList

        llm = self._llm
        prompt = ids + (llm.tokenize(text.encode(), add_bos=False, special=False) if text else [])
        barred = self._end_tokens()
        met = False

        def floor(input_ids: Any, scores: Any) -> Any:
            nonlocal met
            if barred and not met:
                more = llm.detokenize(list(input_ids[len(prompt) :])).decode(errors="ignore")
                met = not too_short(text + more, params.min_chars)
                if not met:
                    scores[barred] = -np.inf
            return scores

        self._complete(
            prompt, max_tokens, {**options, "logits_processor": LogitsProcessorList([floor])}, emit, cancel
        )

    def _end_tokens(self) -> list[int]:
        """The vocabulary's end-of-generation tokens (end of turn, end of text), found once (~50 ms)."""
        if self._eog is None:
            import llama_cpp

            vocab = self._llm._model.vocab
            self._eog = [t for t in range(self._llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
        return self._eog

    def _prefill(self, ids: list[int], cancel: threading.Event) -> bool:
        """Evaluate all but the last prompt token in cancellable chunks, reusing the prefix already in
        the KV cache, or a saved state's when that is longer; create_completion then finds the prefix
        and evaluates only the last token. False when cancelled."""
        llm = self._llm
        live = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids)
        saved, shared = self.prefix_states.best(ids)
        if saved is not None and shared > live and shared >= MIN_REUSE_TOKENS and self._restore(saved):
            live = shared
        start = min(live, len(ids) - 1)
        llm.n_tokens = start  # eval() drops the KV cache from here on
        for i in range(start, len(ids) - 1, self.prefill_chunk):
            if cancel.is_set():
                return False
            llm.eval(ids[i : min(i + self.prefill_chunk, len(ids) - 1)])
        return not cancel.is_set()

    def _warm(self, messages: list[ChatMessage]) -> None:
        if self.prefix_states.capacity <= 0:
            return
        ids, _ = self._prompt_ids(messages)
        llm = self._llm
        covered = max(
            common_prefix(llm.input_ids[: llm.n_tokens].tolist(), ids), self.prefix_states.best(ids)[1]
        )
        if covered < len(ids) - 1 and self._read_disk_state(ids):
            return
        if self._prefill(ids, threading.Event()):
            self._save_state()
            self._write_disk_state(ids)

    # -- the warmed start on disk, between processes

    def _disk_key(self, ids: Sequence[int]) -> str:
        """Everything the KV values depend on: the model and adapter files, the llama.cpp build (its
        libraries: an AVX2 and an AVX-512 build sum in different orders), how the prompt was
        evaluated (context, threads, chunk) and the tokens themselves."""
        import llama_cpp

        h = hashlib.sha256(DISK_MAGIC)
        files = [self.model_path, *([self.lora_path] if self.lora_path else [])]
        files += sorted((Path(llama_cpp.__file__).parent / "lib").glob("*.so*"))
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(
            f"{llama_cpp.__version__} {self.n_ctx} {self.n_threads} {self.prefill_chunk} "
            f"repack={self.weight_repack}\n".encode()
        )
        h.update(struct.pack(f"<{len(ids)}i", *ids))
        return h.hexdigest()[:32]

    def _read_disk_state(self, ids: list[int]) -> bool:
        """Restore the warmed start a previous process kept for exactly this prompt; False when there
        is none, it is damaged, or llama.cpp refuses it (then the prompt is evaluated as usual)."""
        if self.state_dir is None:
            return False
        path = self.state_dir / f"{self._disk_key(ids)}.kv"
        try:
            raw = path.read_bytes()
        except OSError:
            return False
        try:
            if not raw.startswith(DISK_MAGIC):
                raise ValueError("not a state file")
            (size,) = struct.unpack_from("<Q", raw, len(DISK_MAGIC))
            start = len(DISK_MAGIC) + 8
            header = json.loads(raw[start : start + size])
            data = raw[start + size :]
            tokens = header["tokens"]
            if hashlib.sha256(data).hexdigest() != header["sha256"] or tokens != ids[: len(tokens)]:
                raise ValueError("its data or tokens do not match")
        except (ValueError, KeyError, struct.error) as exc:
            log.warning("dropping the saved prompt state %s: %s", path, exc)
            path.unlink(missing_ok=True)  # evaluated again and written anew
            return False
        state = SavedState(tokens, data)
        if not self._restore(state):  # llama.cpp refused it: evaluated again and written anew
            path.unlink(missing_ok=True)
            return False
        self.prefix_states.restored -= 1  # counted as a disk restore, not a reuse between prompts
        self.prefix_states.save(tokens, data)
        self.disk_restored += 1
        os.utime(path)  # recently used: kept when older ones are dropped
        return True

    def _write_disk_state(self, ids: list[int]) -> None:
        """Keep the state just saved for this prompt on disk, written whole or not at all."""
        if self.state_dir is None or not self.prefix_states.states:
            return
        state = self.prefix_states.states[-1]
        if state.tokens != ids[: len(state.tokens)]:
            return
        path = self.state_dir / f"{self._disk_key(ids)}.kv"
        try:
            if path.is_file():  # the same prompt on the same build gives the same state
                os.utime(path)
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            header = json.dumps({"tokens": state.tokens, "sha256": hashlib.sha256(state.data).hexdigest()})
            blob = DISK_MAGIC + struct.pack("<Q", len(header)) + header.encode() + state.data
            fd, tmp = tempfile.mkstemp(dir=self.state_dir, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            kept = sorted(self.state_dir.glob("*.kv"), key=lambda f: f.stat().st_mtime_ns)
            for old in kept[:-DISK_STATES]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a read-only or full disk costs the next process the warm-up, nothing else
            log.warning("could not keep the prompt state in %s: %s", self.state_dir, exc)

    async def warm_prefix(self, messages: list[ChatMessage]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._warm, messages)

    def _save_state(self) -> None:
        """Keep the KV cache of what was just evaluated (prompt and answer) for later prompts."""
        if self.prefix_states.capacity <= 0 or not self._llm.n_tokens:
            return
        import llama_cpp

        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        if written:
            self.prefix_states.save(self._llm.input_ids[: self._llm.n_tokens].tolist(), bytes(buf)[:written])

    def _restore(self, saved: SavedState) -> bool:
        """Put a saved state back as the live KV cache; False (and the live cache emptied) if llama.cpp
        refuses it, in which case the prompt is evaluated from the start."""
        import llama_cpp

        llm = self._llm
        buf = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        if not llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buf, len(saved.data), 0):
            llm.n_tokens = 0
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            return False
        n = len(saved.tokens)
        llm.input_ids[:n] = saved.tokens
        llm.n_tokens = n
        self.prefix_states.restored += 1
        return True

    def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        # the generator itself, not a wrapper around it: closing it must reach the worker's cancel flag
        return stream_from_thread(
            self._executor, lambda emit, cancel: self._generate(messages, params, emit, cancel), "llama.cpp"
        )

    # -- measurement (bench): raw llama.cpp on the same prompt, no pipeline, no queue

    def _reset(self) -> None:
        self.load()
        self._llm.reset()  # forget the evaluated prefix: the next prompt is prefilled from scratch
        self.prefix_states.clear()

    async def reset_cache(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._reset)

    def _raw(self, messages: list[ChatMessage], max_tokens: int) -> dict[str, float]:
        import time

        ids, formatted = self._prompt_ids(messages)
        self._llm.reset()
        t0 = time.perf_counter()
        first: float | None = None
        text = ""
        for chunk in self._llm.create_completion(
            prompt=ids,
            max_tokens=max_tokens,
            temperature=0.0,
            stop=[s for s in (formatted.stop or []) if s],
            stopping_criteria=formatted.stopping_criteria,
            stream=True,
        ):
            first = first or time.perf_counter()
            text += chunk["choices"][0]["text"]
        end = time.perf_counter()
        first = first or end
        # counted as the pipeline counts its answers (base.decode_rate): the text's tokens, and
        # the step that produced the end token when it stopped before max_tokens
        n = self.count_tokens(text)
        return {
            "prompt_tokens": len(ids),
            "ttft_ms": (first - t0) * 1000,
            "tokens": n,
            "tokens_per_s": decode_rate(n, end - first, max_tokens),
        }

    async def raw_timing(self, messages: list[ChatMessage], max_tokens: int) -> dict[str, float]:
        """Time to first token and decode speed of plain llama.cpp on these messages, from a cold cache."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._raw, messages, max_tokens
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
