"""An extractive backend: no model, it quotes the source sentences that best match the question.

Useful where no model can run (a tiny box, a smoke test, a load test of everything but the model)
and as a floor for quality comparisons. It reads the numbered sources from the prompt the pipeline
built, so it goes through exactly the same path as a model would.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from answer_engine.backends.base import Backend, ChatMessage, GenerationParams
from answer_engine.text import approx_tokens, split_sentences, terms

_SOURCE_LINE = re.compile(r"^Source \[(\d+)\]: .*? — \S+ — (.*)$", re.MULTILINE)
_QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE)
NOT_FOUND = "I could not find the answer in the sources."


class ExtractiveBackend(Backend):
    name = "extractive"
    judges = False  # it quotes its sources' own sentences; it cannot answer the verifier's questions

    def __init__(self, *, sentences: int = 2) -> None:
        self.sentences = sentences

    def answer(self, messages: list[ChatMessage]) -> str:
        prompt = messages[-1].content if messages else ""
        q = _QUESTION.search(prompt)
        question = set(terms(q.group(1) if q else prompt))
        scored = []
        for m in _SOURCE_LINE.finditer(prompt):
            n, text = int(m.group(1)), m.group(2)
            for i, sentence in enumerate(split_sentences(text.replace(" … ", "\n"))):
                overlap = len(question & set(terms(sentence)))
                if overlap:
                    scored.append((overlap, -n, -i, sentence, n))
        if not scored:
            return NOT_FOUND
        best = sorted(scored, reverse=True)[: self.sentences]
        return " ".join(f"{s.rstrip('.')} [{n}]." for *_, s, n in best)

    async def stream(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        words = self.answer(messages).split(" ")
        for i, word in enumerate(words[: params.max_tokens]):
            await asyncio.sleep(0)  # a real stream: let other requests run between pieces
            yield word if i == 0 else " " + word

    def count_prompt_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(approx_tokens(m.content) for m in messages)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text) if text else 0

    def info(self) -> dict[str, Any]:
        return {"backend": self.name}
