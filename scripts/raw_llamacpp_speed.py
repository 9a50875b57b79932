"""Compare one ask through the pipeline with raw llama.cpp on the very same prompt, in one run.

Usage: .venv/bin/python scripts/raw_llamacpp_speed.py ["question"]
Prints the pipeline's per-stage timings, then raw llama.cpp's time to first token and decode
tokens/s for the same chat-templated prompt (same model file, same threads, greedy).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from answer_engine.components import build_pipeline
from answer_engine.config import load_settings
from answer_engine.pipeline import AskRequest
from answer_engine.prompt import STOP_STRINGS


async def main(question: str) -> None:
    settings = load_settings()
    pipeline = build_pipeline(settings)
    backend = pipeline.backend
    await backend.start()  # type: ignore[attr-defined]
    seen_messages = []
    original = backend.stream

    def spy(messages, params):  # type: ignore[no-untyped-def]
        seen_messages.append(messages)
        return original(messages, params)

    backend.stream = spy  # type: ignore[method-assign]
    timings = None
    answer = ""
    async for event in pipeline.run(AskRequest(query=question)):
        if event.type == "done":
            timings = event.timings
        elif event.type == "citations":
            answer = event.answer
    assert timings is not None
    print("pipeline:", json.dumps(timings.model_dump()))
    print("answer:", answer)

    # Raw llama.cpp, same prompt ids, same settings; evaluate from an empty cache like the pipeline did.
    llm = backend._llm  # type: ignore[attr-defined]
    ids, formatted = backend._prompt_ids(seen_messages[0])  # type: ignore[attr-defined]
    llm.reset()
    t0 = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_completion(prompt=ids, max_tokens=settings.generation.max_tokens, temperature=0.0,
                                       stop=STOP_STRINGS + list(formatted.stop or []), stream=True):
        if first is None:
            first = time.perf_counter()
        n += 1
    end = time.perf_counter()
    assert first is not None
    raw = {"prompt_tokens": len(ids), "ttft_ms": round((first - t0) * 1000, 1), "tokens": n,
           "tokens_per_s": round((n - 1) / (end - first), 2) if n > 1 else 0.0}
    print("raw llama.cpp:", json.dumps(raw))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "What was Maria Curie the first female recipient of?"))
