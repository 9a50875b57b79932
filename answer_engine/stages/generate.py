"""generate: the chat-templated prompt with the numbered sources, streamed from the backend through
the cite stage; then, when asked, related questions from a short second generation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator

from answer_engine.backends.base import Backend, BackendError, GenerationParams, decode_rate
from answer_engine.config import Settings
from answer_engine.events import DeltaEvent
from answer_engine.prompt import (
    STOP_STRINGS,
    build_messages,
    build_no_search_messages,
    build_related_messages,
    build_structured_messages,
)
from answer_engine.stages import compare
from answer_engine.stages.cite import Citer
from answer_engine.stages.state import RunState, StageError
from answer_engine.structured import output_problem

log = logging.getLogger(__name__)

RELATED_MAX = 3
# A prose answer may not end before it holds this many letters or digits (outside [n] markers): the
# default model once answered "In what year was Wisconsin v. Yoder decided?" with "1" and stopped.
MIN_ANSWER_CHARS = 2
RELATED_MAX_TOKENS = 96


def params_for(state: RunState, settings: Settings) -> GenerationParams:
    options, gen = state.request.options, settings.generation
    structured = options.output_format
    echoes = compare.ECHOES if state.findings else []
    return GenerationParams(
        max_tokens=options.max_tokens or gen.max_tokens,
        temperature=gen.temperature if options.temperature is None else options.temperature,
        top_p=options.top_p or gen.top_p,
        stop=[*STOP_STRINGS, *echoes, *options.stop] if structured is None else list(options.stop),
        json_schema=structured.schema_for_model if structured is not None else None,
        min_chars=MIN_ANSWER_CHARS if structured is None else 0,
    )


async def generate(
    state: RunState, backend: Backend, settings: Settings, *, searched: bool
) -> AsyncIterator[DeltaEvent]:
    """Deltas as the answer streams (markers checked by the cite stage). Afterwards ``state.answer``
    holds the cited text and ``state.raw_answer`` what the model wrote.

    A structured answer (``options.output_format``) is decoded under its schema and passed through
    as the model wrote it (the cite stage's repairs would edit the JSON), then validated.
    Raises StageError("generate", ...) on a backend failure or timeout, or output off the schema."""
    request, timings = state.request, state.timings
    structured = request.options.output_format
    if structured is not None:
        state.messages = build_structured_messages(
            request.query,
            state.sources if searched else [],
            request.history,
            structured.schema_for_model,
            instructions=request.options.instructions,
            urls=settings.generation.source_urls,
            question_first=settings.generation.question_first,
            best_last=settings.generation.best_source_last,
        )
    elif searched:
        state.messages = build_messages(
            request.query,
            state.sources,
            request.history,
            instructions=request.options.instructions,
            urls=settings.generation.source_urls,
            question_first=settings.generation.question_first,
            best_last=settings.generation.best_source_last,
            findings=state.findings,
        )
    else:
        state.messages = build_no_search_messages(
            request.query, request.history, instructions=request.options.instructions
        )
    state.trace["messages"] = state.messages
    params = params_for(state, settings)
    state.trace["params"] = params
    citer = Citer(state.sources, threshold=settings.citations.support_threshold)
    timeout_s = settings.generation.timeout_s
    raw: list[str] = []
    try:
        timings.prompt_tokens = await asyncio.to_thread(backend.count_prompt_tokens, state.messages)
        t = time.perf_counter()
        t_first: float | None = None
        async with asyncio.timeout(timeout_s):
            async with contextlib.aclosing(backend.stream(state.messages, params)) as stream:  # type: ignore[type-var]
                async for piece in stream:
                    if t_first is None:
                        t_first = time.perf_counter()
                        timings.ttft_ms = state.ms_since(t)
                    raw.append(piece)
                    if structured is not None:
                        yield DeltaEvent(text=piece)
                    elif delta := citer.feed(piece):
                        yield delta
        t_end = time.perf_counter()
    except TimeoutError:
        raise StageError("generate", f"the model did not finish within {timeout_s:g}s") from None
    except BackendError as exc:
        raise StageError("generate", str(exc)) from exc
    except Exception as exc:
        log.exception("generation failed")
        raise StageError("generate", f"generation failed: {type(exc).__name__}: {exc}") from exc
    if structured is None and (tail := citer.finish()):
        yield tail
    timings.generation_ms = round((t_end - t) * 1000, 1)
    timings.completion_tokens = await asyncio.to_thread(backend.count_tokens, "".join(raw))
    if t_first is not None:
        timings.tokens_per_s = round(
            decode_rate(timings.completion_tokens, t_end - t_first, params.max_tokens), 2
        )
    state.raw_answer = "".join(raw)
    state.answer = citer.text if structured is None else state.raw_answer.strip()
    state.trace["answer"] = state.answer
    if structured is not None and (problem := output_problem(state.answer, structured.schema_for_model)):
        cut = " (cut off at max_tokens)" if timings.completion_tokens >= params.max_tokens else ""
        raise StageError("generate", f"{problem}{cut}")


def parse_related(text: str, *, exclude: str = "") -> list[str]:
    """Lines that are questions, without numbering or bullets, de-duplicated, at most three."""
    seen = {exclude.strip().lower()}
    out: list[str] = []
    for line in text.splitlines():
        q = re.sub(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*", "", line).strip().strip('"').strip()
        if not q.endswith("?") or not 8 <= len(q) <= 200 or q.lower() in seen:
            continue
        seen.add(q.lower())
        out.append(q)
        if len(out) == RELATED_MAX:
            break
    return out


async def related_questions(state: RunState, backend: Backend, answer: str, settings: Settings) -> list[str]:
    """A short second generation; a failure here costs the suggestions, never the answer."""
    question = state.request.query
    if not state.request.options.related_questions or not answer.strip():
        return []
    t = time.perf_counter()
    messages = build_related_messages(question, answer)
    params = GenerationParams(max_tokens=RELATED_MAX_TOKENS, temperature=0.0, top_p=1.0)
    pieces: list[str] = []
    try:
        async with asyncio.timeout(settings.generation.timeout_s / 2):
            async with contextlib.aclosing(backend.stream(messages, params)) as stream:  # type: ignore[type-var]
                async for piece in stream:
                    pieces.append(piece)
    except Exception as exc:
        log.warning("related questions failed: %s", exc)
    state.timings.related_ms = state.ms_since(t)
    return parse_related("".join(pieces), exclude=question)
