"""Citations are checked, not trusted.

:class:`CitationStream` sits between the model's token stream and the user. It

- parses citation markers as they stream, across token boundaries: ``[1]``, ``[1, 2]``,
  ``[1-3]``, ``[1][2]``, ``[citation:1]``, ``[Source 1]``;
- drops markers that name no source (``[0]``, ``[9]`` with three sources);
- holds each sentence's markers until the sentence ends, then keeps only markers whose source
  supports the sentence (lexical support over stemmed content words) and, when none is left,
  attributes the sentence to the best-supporting source if that support is strong enough
  (small models rarely cite on their own: see ../shared/BASELINES.md);
- writes the markers, normalized to ``[n]``, at the end of the sentence, before its full stop.

Text streams through at once; only a marker or a sentence end is held back until the next
character shows what it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from answer_engine.text import runs_on, terms

MARKER_RE = re.compile(
    r"\[\s*(?:(?:citations?|sources?|refs?)\s*[:#]?\s*)?(\d{1,3}(?:\s*(?:,|;|-|–|and)\s*\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
MARKER_PREFIX_RE = re.compile(r"\[\s*(?:(?:citations?|sources?|refs?)\s*[:#]?\s*)?[\d\s,;–-]*", re.IGNORECASE)
MAX_MARKER_CHARS = 32
TERMINATORS = ".!?"
CLOSERS = "\"')”’"
MIN_TERMS_TO_JUDGE = 2  # shorter "sentences" (list numbers, "Yes.") keep the model's own valid markers


def parse_marker(marker: str) -> list[int] | None:
    """Numbers named by one marker, or None when it is not a citation marker."""
    m = MARKER_RE.fullmatch(marker)
    if not m:
        return None
    nums: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", m.group(1)):
        if re.search(r"[-–]", part):
            lo, hi = (int(x) for x in re.split(r"\s*[-–]\s*", part))
            if 0 < hi - lo <= 10:
                nums.extend(range(lo, hi + 1))
            else:
                nums.extend([lo, hi])
        else:
            nums.append(int(part))
    return nums


def support(sentence_terms: set[str], source_terms: set[str]) -> float:
    """Share of the sentence's content terms found in the source."""
    if not sentence_terms:
        return 0.0
    return len(sentence_terms & source_terms) / len(sentence_terms)


@dataclass
class SourceText:
    n: int
    text: str


class CitationStream:
    def __init__(self, sources: list[SourceText], *, threshold: float = 0.5) -> None:
        self._terms = {s.n: set(terms(s.text)) for s in sources}
        self._lower = {s.n: " ".join(s.text.lower().split()) for s in sources}
        self.threshold = threshold
        self.keep_threshold = threshold  # the same bar as the evaluation judge (evaluation/judge.py)
        self.cited: list[int] = []  # in order of first use
        self._out: list[str] = []
        self._sentence = ""
        self._markers: list[int] = []
        self._mbuf = ""  # a marker being read
        self._term = ""  # a held sentence terminator run, e.g. "." or ".\""
        self._term_ws = ""  # whitespace seen after the terminator
        self._ws = ""  # spaces held within a sentence
        self._after_marker = False

    # -- public

    @property
    def text(self) -> str:
        return "".join(self._out)

    def feed(self, piece: str) -> str:
        """Take the next piece of model output; return the text that can be shown now."""
        start = len(self._out)
        for ch in piece:
            self._char(ch)
        return "".join(self._out[start:])

    def finish(self) -> str:
        """The model is done: release everything held."""
        start = len(self._out)
        while self._mbuf:
            marker, self._mbuf = self._mbuf, ""
            if MARKER_PREFIX_RE.fullmatch(marker):
                self._after_marker = True  # a marker cut off by the end of generation: drop it
            else:
                self._release_literal(marker)
        self._close_sentence()
        self._emit(self._term)  # whitespace after the last sentence is not part of the answer
        self._term = self._term_ws = ""
        return "".join(self._out[start:])

    # -- the state machine

    def _emit(self, s: str) -> None:
        if s:
            self._out.append(s)

    def _emit_text(self, ch: str) -> None:
        if ch == " ":
            # Spaces are held until the next word: a space before a marker that is then dropped
            # must not end up before the full stop ("potassium ."), nor doubled ("Prize  in").
            if self._after_marker and (self._ws or not self._sentence):
                self._after_marker = False
                return
            self._ws += ch
            return
        self._after_marker = False
        if self._ws:
            self._sentence += self._ws
            self._emit(self._ws)
            self._ws = ""
        self._sentence += ch
        self._emit(ch)

    def _char(self, ch: str) -> None:
        if self._mbuf:
            self._mbuf += ch
            if ch == "]":
                marker, self._mbuf = self._mbuf, ""
                nums = parse_marker(marker)
                if nums is None:
                    self._release_literal(marker)
                else:
                    for n in nums:
                        if n in self._terms and n not in self._markers:
                            self._markers.append(n)
                    self._after_marker = True
            elif ch == "\n" or ch == "[" or len(self._mbuf) > MAX_MARKER_CHARS:
                marker, self._mbuf = self._mbuf, ""
                head = marker[:-1]
                if ch in "\n[" and MARKER_PREFIX_RE.fullmatch(head) and any(c.isdigit() for c in head):
                    # a broken marker ("[1" cut by a new "[" or a line end): drop it, or its text
                    # and a later "]" would read as a citation no source backs ("[1[2]]" -> "[1]...")
                    self._after_marker = True
                    self._char(ch)
                else:
                    self._release_literal(marker)
            return
        if ch == "[":
            self._mbuf = "["
            return
        if self._term:
            if not self._term_ws and (ch in TERMINATORS or ch in CLOSERS):
                self._term += ch
                return
            if ch.isspace():
                self._term_ws += ch
                return
            if self._term_ws and not self._runs_on():  # terminator, whitespace, then text: it ended
                self._end_sentence()
            else:  # "3.5", "e.g.x", "Wisconsin v. Yoder": not a sentence end
                self._flush_term()
        if ch in TERMINATORS:
            self._term = ch
            return
        if ch == "\n":
            self._close_sentence()
            self._emit(ch)
            self._sentence = ""
            return
        self._emit_text(ch)

    def _release_literal(self, marker: str) -> None:
        """A '[' that did not open a marker: show it and read the rest again."""
        if self._term and self._term_ws and not self._runs_on():
            self._end_sentence()
        elif self._term:
            self._flush_term()
        self._emit_text(marker[0])
        for ch in marker[1:]:
            self._char(ch)

    def _runs_on(self) -> bool:
        """The held full stop and the space after it follow an abbreviation ("v.", "U.S.", an
        initial): the sentence goes on (a line break always ends it)."""
        return "\n" not in self._term_ws and self._term == "." and runs_on(self._sentence + self._term)

    def _flush_term(self) -> None:
        """The held terminator (and any whitespace after it) is text inside the sentence."""
        held, spaces = self._term, self._term_ws
        self._term = self._term_ws = ""
        for c in held + spaces:
            self._emit_text(c)

    def _end_sentence(self) -> None:
        self._close_sentence()
        self._emit(self._term + self._term_ws)
        self._term = self._term_ws = ""
        self._sentence = ""

    def _close_sentence(self) -> None:
        """Decide the sentence's markers and write them where the sentence's text ends."""
        chosen = self._judge(self._sentence, self._markers)
        self._markers = []
        if chosen:
            self._emit(self._ws + "".join(f"[{n}]" for n in chosen))
            for n in chosen:
                if n not in self.cited:
                    self.cited.append(n)
        self._ws = ""  # trailing spaces of an uncited sentence are dropped
        self._after_marker = False

    def _judge(self, sentence: str, markers: list[int]) -> list[int]:
        if not any(c.isalnum() for c in sentence):
            return []  # a stray quote or bracket after the last full stop ('… further. " [1]') cites nothing
        sent_terms = set(terms(sentence))
        if len(sent_terms) < MIN_TERMS_TO_JUDGE:
            # Too short to judge by overlap ("1745", "Yes"): keep the model's valid markers, or cite
            # the first source that contains the short answer word for word.
            if markers or not sentence.strip():
                return list(markers)
            needle = " ".join(sentence.lower().strip(" *_\"'`:-").split())
            if len(needle) < 2:
                return []
            found = [
                n for n, text in self._lower.items() if re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text)
            ]
            return found[:1]
        scores = {n: support(sent_terms, t) for n, t in self._terms.items()}
        kept = [n for n in markers if scores[n] >= self.keep_threshold]
        if kept:
            return kept
        if not scores:
            return []
        best = max(scores, key=lambda n: (scores[n], -n))
        return [best] if scores[best] >= self.threshold else []
