"""Text helpers shared by the index, passage ranking and citation support: one tokenizer for all."""

from __future__ import annotations

import functools
import re

from search_adapters.textutil import bm25s, truncate_words

__all__ = ["approx_tokens", "bm25s", "pack_words", "split_sentences", "stopwords", "terms", "truncate_words"]

TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")
# A sentence ends at . ! or ? followed by whitespace, or at a line break.
SENTENCE_END_RE = re.compile(r"(?<=[.!?])([\"')\]]*)\s+|\n+")


@functools.cache
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.cache
def stopwords() -> frozenset[str]:
    return frozenset(bm25s().stopwords.STOPWORDS_EN)


def terms(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed terms: the unit of BM25 and of support scoring."""
    stop = stopwords()
    words = [w for w in TOKEN_RE.findall(text.lower()) if w not in stop]
    return _stemmer().stemWords(words) if words else []


def split_sentences(text: str) -> list[str]:
    """Sentences, each with its closing quotes or brackets ('He said "stop."' keeps its quote)."""
    out: list[str] = []
    start = 0
    for m in SENTENCE_END_RE.finditer(text):
        end = m.start() + len(m.group(1) or "")
        out.append(text[start:end])
        start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate of model tokens (BPE averages ~0.75 words per token in English)."""
    words = len(text.split())
    return int(words * 4 / 3) + 1


def pack_words(pieces: list[str], max_words: int) -> list[str]:
    """Join consecutive pieces (sentences, paragraphs) into chunks of at most ``max_words`` words;
    a single longer piece stays whole."""
    out: list[str] = []
    buf: list[str] = []
    n = 0
    for piece in pieces:
        w = len(piece.split())
        if buf and n + w > max_words:
            out.append(" ".join(buf))
            buf, n = [], 0
        buf.append(piece)
        n += w
    if buf:
        out.append(" ".join(buf))
    return out
