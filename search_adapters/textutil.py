"""Small text helpers the providers need, kept here so search_adapters imports nothing from the
engine (answer_engine/text.py re-exports them for the engine's own use)."""

from __future__ import annotations

import functools
import logging
from types import ModuleType


@functools.cache
def bm25s() -> ModuleType:
    """The bm25s module, imported on first use (it sets its own logger to DEBUG at import)."""
    import bm25s as module

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return module


def truncate_words(text: str, max_chars: int) -> str:
    """Whitespace collapsed, cut at a word boundary within ``max_chars``, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
