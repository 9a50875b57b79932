"""compare: a comparison question checked one thing at a time, then decided by the engine.

A small model asked "Are both Cypress and Ajuga genera?" or "Do the drinks Gibson and Zurracapote both
contain gin?" over both pages answers "Yes" (docs/reports/multistep: every yes/no comparison of the
HotpotQA set got "Yes"), and asked "Who was born earlier, Emma Bull or Virginia Woolf?" it writes both
dates right and picks the wrong one. Answering a comparison as separate single-hop questions, one per
thing, and combining their answers by rule is how question decomposition handles it (DecompRC, Min et
al. 2019; least-to-most prompting): each sub-question sees only its own thing's sources and needs a
word or a date back.

- ``both`` ("Are both A and B ...?", "Do A and B both ...?"): yes/no for each; yes when both are.
- ``same`` ("Are A and B in the same neighborhood?"): the value for each; yes when one's words are
  all in the other's.
- ``which`` ("Which writer was from England, A or B?"): yes/no for each; the one that is, when only
  one is.
- ``order`` ("Who is older, A or B?", "Which was founded first, A or B?"): the date for each; the
  earlier or the later, when both dates are read.
- ``share`` ("What occupation do A and B share?"): the value for each; the words they have in common.

The outcome is not the answer: it goes into the answer prompt as what the sources said, thing by
thing, and the model writes the answer (with its citations, verified as any other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from answer_engine.backends.base import Backend
from answer_engine.citations import MARKER_RE
from answer_engine.passages import SourceDoc
from answer_engine.prompt import build_messages
from answer_engine.stages import plan
from answer_engine.text import terms

YES_NO_TOKENS = 3
VALUE_TOKENS = 16
SOURCES_PER_THING = 2
HEADER = "Checked in the sources one at a time:"
# After the verdict: without it the answer was often the bare verdict ("No[1]."); the model sometimes
# copies it at the end of its answer, so it (and the header) end generation (``ECHOES``).
WRITE_UP = "Start your answer with it."
ECHOES = [WRITE_UP.rstrip("."), HEADER.rstrip(":")]

Kind = Literal["both", "same", "which", "order", "share"]

_AUX = r"(?:Are|Is|Was|Were|Do|Does|Did|Have|Has|Can|Could)"
_YES_NO_Q = re.compile(rf"^\s*{_AUX}\b", re.IGNORECASE)
_EARLIER = re.compile(r"\b(?:older|oldest|earlier|earliest|first|before|sooner)\b", re.IGNORECASE)
_LATER = re.compile(r"\b(?:younger|youngest|later|latest|more recent(?:ly)?|newer|last)\b", re.IGNORECASE)
# a choice that compares amounts ("a higher instrument to person ratio"): left to the model
_AMOUNT = re.compile(
    r"\b(?:higher|lower|more|fewer|less|larger|smaller|bigger|longer|shorter|taller|greater|most|least)\b",
    re.IGNORECASE,
)
_DATED = re.compile(
    r"\b(born|founded|established|formed|released|published|built|opened|died|started|created|"
    r"launched|introduced|written|made|founded)\b",
    re.IGNORECASE,
)
_PREDICATE = re.compile(
    r"^\s*(?:Which|Who|What)\s+(?:[\w'-]+\s+){0,3}?(is|was|are|were|has|had|did|does|do)\s+([^,?]+?)\s*,",
    re.IGNORECASE,
)
_SHARED = re.compile(
    r"^\s*What\s+([\w'-]+(?:\s+[\w'-]+)?)\s+(?:do|does|did)\s+.+?\s+(?:share|have in common)\b", re.IGNORECASE
)
_SAME_NOUN = re.compile(r"\bsame\s+([\w'-]+(?:\s+[\w'-]+)?)", re.IGNORECASE)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        "january february march april may june july august september october november december".split()
    )
}
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
_DAY = re.compile(r"\b([0-3]?\d)(?:st|nd|rd|th)?\b")


@dataclass
class Check:
    """One thing's sub-question and what the model answered for it."""

    thing: str
    question: str
    sources: list[int]  # the numbers of the sources it was asked over
    reply: str | None = None


@dataclass
class Comparison:
    kind: Kind
    question: str
    things: list[str]
    later: bool = False  # order: the later date wins
    checks: list[Check] = field(default_factory=list)
    decided: str | None = None  # "Yes", "No" or the winning thing; None when the checks do not decide


def kind_of(question: str) -> Comparison | None:
    """The comparison a question asks, with its two things (``plan.compared``), or None."""
    things = plan.compared(question)
    if len(things) != 2:
        return None
    if _YES_NO_Q.search(question):
        kind: Kind = "same" if re.search(r"\bsame\b", question, re.IGNORECASE) else "both"
        return Comparison(kind, question, things)
    if _SHARED.search(question):
        return Comparison("share", question, things)
    if not re.search(r"\bor\b", question):
        return None
    if _EARLIER.search(question) or _LATER.search(question):
        return Comparison("order", question, things, later=not _EARLIER.search(question))
    if _AMOUNT.search(question) or not _PREDICATE.search(question):
        return None
    return Comparison("which", question, things)


def sub_question(c: Comparison, thing: str) -> str:
    """The single-hop question asked about one thing."""
    q = c.question.strip()
    if c.kind == "both":
        return f'{q}\nAnswer this for "{thing}" alone. Reply with Yes or No only.'
    if c.kind == "same":
        m = _SAME_NOUN.search(q)
        what = m.group(1) if m else "one"
        return f'{q}\nFirst, for "{thing}" alone: which {what}? Reply with the name only, in a few words.'
    if c.kind == "share":
        m = _SHARED.search(q)
        assert m is not None
        return f"What is the {m.group(1).lower()} of {thing}? Reply with the answer only, in a few words."
    if c.kind == "order":
        m = _DATED.search(q)
        verb = m.group(1).lower() if m else ("born" if re.search(r"\b(?:older|younger)\b", q, re.I) else None)
        if verb:
            return f"When was {thing} {verb}? Reply with the date only."
        return f'{q}\nFor "{thing}" alone: on what date? Reply with the date only.'
    m = _PREDICATE.search(q)
    assert m is not None
    return f"{m.group(1).capitalize()} {thing} {m.group(2)}? Reply with Yes or No only."


def sources_for(thing: str, sources: list[SourceDoc]) -> list[SourceDoc]:
    """The sources about one thing: those whose title holds all its words, else those whose text
    does; the best-ranked first."""
    want = set(terms(thing))
    if not want:
        return []
    titled = [s for s in sources if want <= set(terms(s.title))]
    if titled:
        return titled[:SOURCES_PER_THING]
    return [s for s in sources if want <= set(terms(s.text))][:SOURCES_PER_THING]


def yes_no(reply: str | None) -> bool | None:
    word = re.sub(r"[^a-z]", "", (reply or "").split(" ", 1)[0].lower())
    return True if word == "yes" else False if word == "no" else None


def date_key(reply: str | None) -> tuple[int, int, int] | None:
    """(year, month, day) of a date as written ("December 13, 1954", "25 January 1882", "1838"); 0 for
    a part not given; None without a year."""
    text = (reply or "").lower()
    years = _YEAR.findall(text)
    if len(years) != 1:
        return None  # none, or a range ("1882-1941"): not one date
    month = next((n for m, n in _MONTHS.items() if re.search(rf"\b{m[:3]}\w*\b", text)), 0)
    rest = _YEAR.sub(" ", text)
    day = next((int(d) for d in _DAY.findall(rest) if 1 <= int(d) <= 31), 0) if month else 0
    return int(years[0]), month, day


def decide(c: Comparison) -> str | None:
    replies = [ch.reply for ch in c.checks]
    if len(replies) != 2 or any(r is None for r in replies):
        return None
    if c.kind in ("both", "which"):
        said = [yes_no(r) for r in replies]
        if None in said:
            return None
        if c.kind == "both":
            return "Yes" if all(said) else "No"
        return c.things[said.index(True)] if said.count(True) == 1 else None
    if c.kind == "same":
        a, b = (set(terms(r or "")) for r in replies)
        if not a or not b:
            return None
        return "Yes" if a <= b or b <= a else "No"
    if c.kind == "share":  # the first reply's words that the second has too, as the first wrote them
        theirs = set(terms(MARKER_RE.sub(" ", replies[1] or "")))
        common = [
            w for w in re.findall(r"[\w'-]+", MARKER_RE.sub(" ", replies[0] or "")) if set(terms(w)) & theirs
        ]
        return " ".join(common) or None
    keys = [date_key(r) for r in replies]
    if None in keys or keys[0] == keys[1]:
        return None
    k0, k1 = keys[0], keys[1]
    assert k0 is not None and k1 is not None
    if k0[0] == k1[0] and (not k0[1] or not k1[1]):
        return None  # same year, a month missing: not decided
    first = 0 if k0 < k1 else 1
    return c.things[1 - first] if c.later else c.things[first]


async def check(
    c: Comparison,
    sources: list[SourceDoc],
    backend: Backend,
    use: plan.PlanUse,
    *,
    timeout_s: float,
    urls: bool = True,
) -> Comparison:
    """Ask each thing's sub-question over its own sources, then decide (``c.decided``)."""
    for thing in c.things:
        own = sources_for(thing, sources)
        ch = Check(thing, sub_question(c, thing), [s.n for s in own])
        c.checks.append(ch)
        if not own:
            continue
        tokens = VALUE_TOKENS if c.kind in ("same", "order", "share") else YES_NO_TOKENS
        messages = build_messages(ch.question, own, [], urls=urls)
        ch.reply = await plan.ask_model(backend, messages, max_tokens=tokens, timeout_s=timeout_s, use=use)
    c.decided = decide(c)
    return c


def findings(c: Comparison) -> str | None:
    """What the checks found, for the answer prompt; None when they did not decide."""
    if c.decided is None:
        return None
    lines = [f"- {ch.thing}: {ch.reply} {''.join(f'[{n}]' for n in ch.sources)}" for ch in c.checks]
    return f"{HEADER}\n" + "\n".join(lines) + f"\nSo the answer is: {c.decided}. {WRITE_UP}"


def trace(c: Comparison) -> dict[str, object]:
    return {
        "kind": c.kind,
        "checks": [{"thing": ch.thing, "sources": ch.sources, "reply": ch.reply} for ch in c.checks],
        "decided": c.decided,
    }


def agrees(answer: str, checked: dict[str, object] | None) -> bool:
    """Whether an answer gives the verdict of the checks (``trace(c)``): it starts with the Yes or
    No; or names the thing decided on before the other one; or holds the words in common. False
    without a verdict."""
    if not checked or not isinstance(decided := checked.get("decided"), str):
        return False
    text = MARKER_RE.sub(" ", answer).strip().lower()
    if decided in ("Yes", "No"):
        return re.match(rf"{decided.lower()}\b", text) is not None
    things = [str(ch["thing"]) for ch in checked.get("checks", [])]  # type: ignore[union-attr]
    if checked.get("kind") == "share":
        return set(terms(decided)) <= set(terms(text))
    at = {t: text.find(t.lower()) for t in things}
    named = sorted((i, t) for t, i in at.items() if i >= 0)
    return bool(named) and named[0][1] == decided
