"""Text helpers shared by the index, passage ranking and citation support: one tokenizer for all."""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

from search_adapters.textutil import bm25s, truncate_words

__all__ = [
    "ANALYZER_VERSION",
    "approx_tokens",
    "bm25s",
    "fold",
    "pack_words",
    "split_sentences",
    "stopwords",
    "terms",
    "truncate_words",
]

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


# What ``terms`` makes of a text; an index built with another version is rebuilt (the on-disk index
# by its fingerprint, the PostgreSQL one by ``index --to postgres``). 2: Latin accents folded.
ANALYZER_VERSION = 2
# Latin letters that NFKD does not take apart into a letter and its accent
_OWN_LETTERS = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ı": "i",
    "ŧ": "t",
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
}


@functools.cache
def _latin_folds() -> dict[int, str]:
    """Each accented Latin letter (Latin-1, Latin Extended-A/B, Latin Extended Additional) to its
    letters without the accent. Other scripts keep their marks: a Devanagari vowel sign or a
    Cyrillic й is a letter of its own, not an accent."""
    table: dict[int, str] = {}
    for lower, own in _OWN_LETTERS.items():
        table[ord(lower)] = own
        if len(upper := lower.upper()) == 1 and upper != lower:
            table[ord(upper)] = own.capitalize()
    for cp in itertools.chain(range(0xC0, 0x250), range(0x1E00, 0x1F00)):
        base = "".join(ch for ch in unicodedata.normalize("NFKD", chr(cp)) if not unicodedata.combining(ch))
        if cp not in table and base != chr(cp) and base.isascii() and base.isalpha():
            table[cp] = base
    return table


def fold(text: str) -> str:
    """The text with its Latin letters' accents taken off ("Gospić" → "Gospic", "Temüjin" →
    "Temujin"), as a reader types a name without them. Composed first, so a decomposed "c" and
    combining acute folds like the precomposed "ć"."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text).translate(_latin_folds())


def terms(text: str) -> list[str]:
    """Lower-cased, accent-folded, stop-word-free, stemmed terms: the unit of BM25 and of support
    scoring ("Gospić" and "Gospic" are one term)."""
    stop = stopwords()
    words = [w for w in TOKEN_RE.findall(fold(text).lower()) if w not in stop]
    return _stemmer().stemWords(words) if words else []


# A "sentence" ending in an initial or a common abbreviation ("Albert C.", "U.S.", "St.", "Wisconsin
# v.") runs on into the next: cut there, a name, a court case or a patent number would be split in two.
RUNS_ON_RE = re.compile(
    r"(?:\b[A-Z]|\b(?:[A-Za-z]\.)+[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|No|Nos|v|vs|etc|Gen|Gov|Sen|Rev|Inc|Co"
    r"|Ltd|Mt|Ft|ca|c|approx|Jan|Feb|Aug|Sept|Sep|Oct|Nov|Dec))\.$"
)


def runs_on(sentence: str) -> bool:
    """Whether text ending here (with its full stop) stops at an abbreviation, not a sentence end."""
    return bool(RUNS_ON_RE.search(sentence))


def split_sentences(text: str, *, abbreviations: bool = True) -> list[str]:
    """Sentences, each with its closing quotes or brackets ('He said "stop."' keeps its quote). A full
    stop after an abbreviation or an initial does not end one (a line break always does), unless
    ``abbreviations`` is False: the index's passage chunking, kept as its retrieval was measured."""
    out: list[str] = []
    start = 0
    joined = False  # the last piece runs on into the next
    for m in SENTENCE_END_RE.finditer(text):
        end = m.start() + len(m.group(1) or "")
        piece = text[start:end].strip()
        if joined and out and piece:
            out[-1] += " " + piece
        elif piece:
            out.append(piece)
        joined = abbreviations and bool(out) and "\n" not in m.group(0) and runs_on(out[-1])
        start = m.end()
    tail = text[start:].strip()
    if joined and out and tail:
        out[-1] += " " + tail
    elif tail:
        out.append(tail)
    return out


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
