"""`engine-build verify`: load an artifact through the backend it calls for and run golden prompts.

Checks: greedy output is the same on two runs; streamed pieces concatenate to the full text (where
the backend reports a full text, as TensorRT-LLM's outputs[0].text does); stop strings end the
answer; no end-of-sequence token text leaks into the output; and, with a reference checkpoint, the
first words match the reference model's greedy output. The results go into the manifest."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from engine_build import artifacts

GOLDEN = [
    "What is the capital of France? Answer in one short sentence.",
    "Name three primary colors.",
    "Complete the sentence: The quick brown fox",
]
REFERENCE_WORDS = 8


class _Settings:
    """The few generation settings backend_for_artifact reads."""

    class generation:  # noqa: N801
        n_ctx = 2048
        n_threads = 0
        prefix_states = 0
        disk_prefix_state = False  # verification evaluates every prompt itself
        weight_repack = "auto"
        prefill_chunk = 0
        max_batch_size = 4
        tensor_parallel_size = 1


async def _run(backend: Any, prompt: str, max_tokens: int, stop: list[str] | None = None) -> list[str]:
    from answer_engine.backends.base import ChatMessage, GenerationParams

    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, stop=stop or [])
    return [p async for p in backend.stream([ChatMessage(role="user", content=prompt)], params)]


async def _verify(artifact: Path, reference: Path | None, max_tokens: int) -> dict[str, Any]:
    from answer_engine.backends import backend_for_artifact
    from answer_engine.backends.transformers_backend import TransformersBackend

    backend = backend_for_artifact(artifact, _Settings)
    ref = TransformersBackend(reference) if reference else None
    t0 = time.perf_counter()
    await backend.start()
    load_s = time.perf_counter() - t0
    results = []
    try:
        for prompt in GOLDEN:
            first = await _run(backend, prompt, max_tokens)
            second = await _run(backend, prompt, max_tokens)
            text = "".join(first)
            row: dict[str, Any] = {
                "prompt": prompt,
                "text": text,
                "deterministic": first == second or text == "".join(second),
            }
            full = getattr(backend, "last_full_text", None)
            row["stream_concatenates"] = None if full is None else "".join(second) == full
            eos = getattr(getattr(backend, "_tok", None), "eos_token", None)
            row["no_eos_text"] = not (eos and eos in text)
            words = text.split()
            if len(words) >= 3:
                stop_word = words[2]
                stopped = "".join(await _run(backend, prompt, max_tokens, stop=[stop_word]))
                row["stop_honored"] = stop_word not in stopped and len(stopped) <= len(text)
            else:
                row["stop_honored"] = None
            if ref is not None:
                ref_text = "".join(await _run(ref, prompt, max_tokens))
                row["reference_match"] = ref_text.split()[:REFERENCE_WORDS] == words[:REFERENCE_WORDS]
            results.append(row)
    finally:
        for obj in (backend, ref):
            if obj is not None:
                obj.close()
    checks = ("deterministic", "stream_concatenates", "no_eos_text", "stop_honored", "reference_match")
    passed = all(r.get(c) in (True, None) for r in results for c in checks)
    return {
        "passed": passed,
        "load_s": round(load_s, 2),
        "total_s": round(time.perf_counter() - t0, 2),
        "max_tokens": max_tokens,
        "reference": str(reference) if reference else None,
        "prompts": results,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def verify(artifact: Path, *, reference: Path | None = None, max_tokens: int = 24) -> dict[str, Any]:
    manifest = artifacts.read_manifest(artifact)
    result = asyncio.run(_verify(Path(artifact), reference, max_tokens))
    manifest["verify"] = result
    artifacts.write_manifest(artifact, manifest)
    return result
