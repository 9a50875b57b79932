"""verify: is each sentence of the answer stated by the source it cites? Entailment, not shared words.

Word overlap is not support: "X won the Masters twice [1]" shares its words with a page that says
X never won. So the answer model itself is asked, sentence by sentence, a yes/no question about
the source(s) the sentence cites. The question continues the very conversation that produced the
answer (system prompt, sources, question, the answer as written), so llama.cpp reuses the KV cache
of all of it and evaluates only the short question; one or two tokens come back.

Outcome: a sentence its cited source does not state but a page that source names does (the facts
check) is cited to that page instead; one whose only unstated fact is in an aside the question
does not ask about (", which took place on ...") is kept without the aside; a sentence no cited
source states is dropped from the final text (the stream showed it; the citations event carries
the final text, which faces show instead), and with it a sentence that leans on it ("It is ...");
a sentence the verifier could not judge is kept but does not count as supported; when no sentence
is left, the answer says plainly that the sources found do not answer the question and names what
they cover.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from answer_engine.backends.base import Backend, GenerationParams
from answer_engine.citations import MARKER_RE, parse_marker
from answer_engine.config import VerifySettings
from answer_engine.events import AnswerSupport, Citation, CitationsEvent, SentenceSupport
from answer_engine.passages import Passage, SourceDoc, coverage
from answer_engine.request import ChatMessage
from answer_engine.stages import compare, plan
from answer_engine.stages.state import RunState
from answer_engine.text import split_sentences, terms

log = logging.getLogger(__name__)

NOT_COVERED_ANSWER = "The sources found do not answer this question. They cover: {topics}."
VERIFY_PROMPT = (
    'Fact check. Read only {which} above. Does it clearly state this: "{claim}"\n'
    "Answer with one word, yes or no."
)
MIN_TERMS = 2  # "Yes." or a list number is not a claim
# The model's or the engine's own way of saying the sources do not answer: not a claim to check.
_NO_ANSWER_RE = re.compile(r"could not find|do not answer|does not (?:say|state|mention)", re.IGNORECASE)
_YES_RE = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
QUOTE_PROMPT = (
    'Fact check. Copy, word for word, the one sentence of {which} above that states this: "{claim}"\n'
    "If no sentence there states it, write NONE."
)
QUOTE_MAX_TOKENS = 64
QUOTE_MATCH = 0.6  # share of the quote's words that must be in one source sentence: it is really quoted
_NUMBER_RE = re.compile(r"\d+(?:[.,:]\d+)*")
_CAPITALIZED_RE = re.compile(r"\b[A-Z][\w'-]+")
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion once twice thrice half quarter first second third fourth fifth sixth seventh "
    "eighth ninth tenth never none no all".split()
)


@dataclass
class Claim:
    start: int  # span in the final text
    end: int
    text: str  # markers removed
    cited: list[int]
    verdict: bool | None = None
    evidence: str | None = None
    window: str | None = None  # the evidence with its neighbours and its page's title
    page: SourceDoc | None = None  # the source the window is from
    recited: int | None = None  # another retrieved source that states it, cited instead
    also: list[int] = field(default_factory=list)  # more sources it is cited to (a claim across pages)
    trimmed: str | None = None  # the sentence as kept, without an aside that failed (``main_clause``)


def not_covered(sources: list[SourceDoc]) -> str:
    topics = "; ".join(dict.fromkeys(s.title for s in sources)) or "nothing relevant"
    return NOT_COVERED_ANSWER.format(topics=topics)


# A leading "Yes."/"No." is the answer to a yes/no question, not part of the sentence after it (the
# sentence splitter keeps "No. 5" together, and so "No. Cypress and Ajuga are not genera [1].").
_LEADING_YES_NO_RE = re.compile(r"^\s*(?:yes|no)\s*[.,!]\s+(?!\d)", re.IGNORECASE)


def claims_of(text: str) -> list[Claim]:
    """The sentences of the answer that state something, with their spans and cited sources."""
    out: list[Claim] = []
    lead = _LEADING_YES_NO_RE.match(text)
    cursor = lead.end() if lead else 0
    for sentence in split_sentences(text[cursor:]):
        start = text.find(sentence, cursor)
        if start < 0:
            continue
        cursor = end = start + len(sentence)
        cited = [n for m in MARKER_RE.finditer(sentence) for n in (parse_marker(m.group(0)) or [])]
        plain = _plain(sentence)
        if len(set(terms(plain))) < MIN_TERMS or _NO_ANSWER_RE.search(plain):
            continue
        out.append(Claim(start, end, plain, list(dict.fromkeys(cited))))
    return out


def _plain(sentence: str) -> str:
    return " ".join(MARKER_RE.sub(" ", sentence).split()).replace(" .", ".")


# An aside: a non-restrictive relative clause (", which took place on 14 September 1066"). It adds
# to its sentence without changing what the rest of it says. (Not a parenthesis: "Silicon (SiO 2)
# makes up almost half of the earth's crust" restates the subject, and without it the wrong answer
# passed, its one name being on the page.)
_ASIDE_RE = re.compile(r",\s+(?:which|who|whom|whose|where|when)\b[^,;()\[\]]*")


def main_clause(sentence: str, question: str) -> str | None:
    """The sentence without its asides that share no term with the question; None when it has none.
    "Harold II died at the Battle of Hastings, which took place on 14 September 1066 [1]." ->
    "Harold II died at the Battle of Hastings [1]." for "Where did Harold II die?" (the page says
    14 October). An aside the question asks about stays ("..., who was born in 1965" for "In what
    year was the creator ... born?"): without it the sentence no longer answers."""
    asked = set(terms(question))
    out = _ASIDE_RE.sub(lambda m: m.group(0) if set(terms(m.group(0))) & asked else "", sentence)
    return out if out != sentence and len(set(terms(out))) >= MIN_TERMS else None


def _trim(claim: Claim, text: str, sources: dict[int, SourceDoc], question: str, **kw: Any) -> None:
    """A claim the facts check failed, kept as its main clause when that is stated (``main_clause``):
    one wrong detail in an aside costs the aside, not the answer."""
    shorter = main_clause(text[claim.start : claim.end], question)
    if shorter is None:
        return
    trial = Claim(claim.start, claim.end, _plain(shorter), claim.cited)
    verdict, evidence = check_facts(trial, sources, question, **kw)
    if not verdict:
        return
    claim.text, claim.verdict, claim.evidence, claim.trimmed = trial.text, verdict, evidence, shorter
    claim.window, claim.page, claim.recited, claim.also = trial.window, trial.page, trial.recited, trial.also


# A sentence that opens on a pronoun ("It is made up of graduate and undergraduate students [1].")
# is about what the sentence before it named: when that one is dropped, it no longer says anything
# of its own, or says it of something else.
_LEANS_BACK_RE = re.compile(r"^(?:it|its|he|his|she|her|they|their|this|these|those|such)\b", re.IGNORECASE)


def drop_dependents(claims: list[Claim]) -> int:
    """Drop each sentence that leans on the dropped sentence before it (in a chain); how many."""
    dropped = 0
    for before, claim in zip(claims, claims[1:], strict=False):
        if before.verdict is False and claim.verdict is not False and _LEANS_BACK_RE.match(claim.text):
            claim.verdict = False
            dropped += 1
    return dropped


def _which(cited: list[int]) -> str:
    if not cited:
        return "the sources"
    if len(cited) == 1:
        return f"source [{cited[0]}]"
    return "sources " + ", ".join(f"[{n}]" for n in cited[:-1]) + f" and [{cited[-1]}]"


def _closest(
    words: set[str],
    claim: Claim,
    sources: dict[int, SourceDoc],
    among: list[int] | None = None,
    accept: Callable[[SourceDoc, list[str], int], bool] | None = None,
) -> tuple[int, list[str], int, SourceDoc] | None:
    """The sentence of the claim's cited sources (all sources when it cites none; ``among`` when
    given) sharing most terms with ``words``, of those ``accept`` takes when given: (terms shared,
    the sentences of its passage, its index, its source); None when none shares any."""
    best: tuple[int, list[str], int, SourceDoc] | None = None
    for n in among if among is not None else claim.cited or list(sources):
        for passage in sources[n].passages if n in sources else []:
            sentences = split_sentences(passage.text)
            for i, sentence in enumerate(sentences):
                score = len(words & set(terms(sentence)))
                if score and (best is None or score > best[0]):
                    if accept is None or accept(sources[n], sentences, i):
                        best = (score, sentences, i, sources[n])
    return best


def _window(source: SourceDoc, sentences: list[str], i: int, radius: int = 1) -> str:
    """Sentence ``i`` with ``radius`` neighbours on each side, after its page's title."""
    return " ".join([source.title, *sentences[max(0, i - radius) : i + radius + 1]])


def _evidence(claim: Claim, sources: dict[int, SourceDoc]) -> str | None:
    """The sentence of the cited sources that shares most with the claim (for the reader to check)."""
    best = _closest(set(terms(claim.text)), claim, sources)
    return best[1][best[2]] if best else None


async def _ask(backend: Backend, messages: list[ChatMessage]) -> bool | None:
    params = GenerationParams(max_tokens=2, temperature=0.0, top_p=1.0, stop=["\n"])
    pieces: list[str] = []
    async with contextlib.aclosing(backend.stream(messages, params)) as stream:  # type: ignore[type-var]
        async for piece in stream:
            pieces.append(piece)
    m = _YES_RE.match("".join(pieces))
    return None if m is None else m.group(1).lower() == "yes"


def key_facts(claim: str) -> set[str]:
    """What a claim hangs on: its numbers, number words and names. A sentence that states the claim
    has all of them ("won the Masters twice" is not stated by "has never won the Masters")."""
    from answer_engine.text import stopwords

    facts = set(_NUMBER_RE.findall(claim))
    facts |= {w.lower() for w in re.findall(r"[A-Za-z]+", claim) if w.lower() in NUMBER_WORDS}
    facts |= {
        t
        for w in _CAPITALIZED_RE.findall(claim)
        if w.lower() not in stopwords() and w.lower() not in FUNCTION_WORDS
        for t in terms(w)
    }
    return facts


# "3 stages" is stated by "three stages", and "ten" by "10".
_DIGIT_OF = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORD_OF = {d: w for w, d in _DIGIT_OF.items()}


def _has_facts(facts: set[str], sentence: str) -> bool:
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", sentence)}
    have = set(_NUMBER_RE.findall(sentence)) | words | set(terms(sentence))
    have |= {_DIGIT_OF[w] for w in words if w in _DIGIT_OF} | {_WORD_OF[d] for d in have if d in _WORD_OF}
    return facts <= have


_NEGATION_RE = re.compile(r"\b(?:not|never|no|none|neither|nor|without)\b|n't\b", re.IGNORECASE)
NEGATED_WORDS = 4  # a negation denies what the next few words say


def negates(sentence: str, claim: str) -> bool:
    """Whether the sentence denies what the claim asserts: a negation the claim lacks, followed
    within a few words by one of the claim's terms ("did not receive the prize" against "received
    the prize", "has never won" against "has won"). A negation about something else in the same
    sentence ("... was no longer in control of his own company" against "General Electric took
    over Edison Machine Works", "... for not having a residence permit" against "Tesla was returned
    to Gospić") denies nothing the claim says."""
    if _NEGATION_RE.search(claim):
        return False
    said = set(terms(claim))
    for m in _NEGATION_RE.finditer(sentence):
        following = " ".join(sentence[m.end() :].split()[:NEGATED_WORDS])
        if said & set(terms(following)):
            return True
    return False


# Capitalized only because they open a sentence: not names.
FUNCTION_WORDS = frozenset(
    "i you he she it we they me him her us them my your his its our their this that these those there here "
    "what which who whom whose when where why how yes also however although because since while".split()
)


def check_facts(
    claim: Claim,
    sources: dict[int, SourceDoc],
    question: str = "",
    *,
    radius: int = 1,
    comparison: bool = False,
) -> tuple[bool | None, str | None]:
    """No model: the sentence of the cited sources closest to the claim (with its neighbours and its
    page's title) must hold every number, number word and name the claim adds to the question, and
    not negate what the claim asserts. (The question's own names are the reader's words, not the
    answer's: "NYC" in the question need not be in the page that says "New York".) A claim that
    adds no such fact cannot be judged this way (None). With ``comparison`` (the engine checked the
    question's two things one at a time and the answer gives its verdict, ``compare.agrees``), a
    claim is also read as being about the pages it names: ``_of_named_pages``, ``_stated_across``."""
    asked = set(_NUMBER_RE.findall(question)) | {w.lower() for w in re.findall(r"[A-Za-z]+", question)}
    facts = key_facts(claim.text) - asked - set(terms(question))
    if not facts and comparison and (said := _of_named_pages(claim, sources, question)):
        return None, said
    best = _closest(set(terms(claim.text)), claim, sources)
    if best is None:
        return False, None
    _, sentences, i, claim.page = best
    evidence = sentences[i]
    # the page's title names what the whole page is about: "at the University of Chicago" is stated
    # by a sentence about "the university" on the page titled University of Chicago
    window = _window(claim.page, sentences, i)
    claim.window = _window(claim.page, sentences, i, radius)  # for the question-coverage check
    if not facts:
        return None, evidence
    if _has_facts(facts, window) and not negates(evidence, claim.text):
        return True, evidence
    if claim.cited and (other := _stated_elsewhere(claim, facts, sources)):
        # the page the model cited stays part of the evidence the question is looked for in: it is
        # where the claim's subject is ("Ichitaka Seto's creator"), the other page has the fact
        claim.recited, claim.page, elsewhere, evidence = other
        claim.window = f"{claim.window} {elsewhere}"
        return True, evidence
    if comparison and (across := _stated_across(claim, facts, sources)):
        pages, windows, said = across
        claim.recited, claim.also = pages[0], pages[1:]
        claim.window = " ".join(windows)
        return True, " … ".join(said)
    return False, evidence


ACROSS_PAGES = 3  # the most pages one claim is found stated across


def _named_pages(claim: Claim | str, sources: dict[int, SourceDoc]) -> list[int]:
    """The sources whose title the claim (or a text) names, the most specific of those that share
    words ("Esma Sultan Mansion", not also "Esma Sultan (daughter of Ahmed III)"), at most
    ``ACROSS_PAGES``."""
    said = set(terms(claim if isinstance(claim, str) else claim.text))
    titles = {n: t for n, s in sources.items() if (t := _title_terms(s)) and t <= said}
    return [n for n, t in titles.items() if not any(t < other for other in titles.values())][:ACROSS_PAGES]


def _of_named_pages(claim: Claim, sources: dict[int, SourceDoc], question: str) -> str | None:
    """A comparison's sentence with nothing to check ("Cypress and Ajuga are genera [1]", "Robert
    Erskine Childers was from England [1]", every name in it the question's) is about the things it
    names: it is cited to their pages (the model cited Henry Roth's page for Childers), or, when a
    thing it names has no page of that title ("Silene", read from "Silene menziesii"), to those pages
    beside the ones it cited. The closest sentences of the pages it cites, it names or the question
    names are its evidence for the question-coverage check (one page covers half of a question about
    two things). Its evidence: the sentence of the first page it names; None (and nothing changed)
    when it names none."""
    named = _named_pages(claim, sources)
    if not named:
        return None
    said = set(terms(claim.text))
    things = [t for t in plan.compared(question) if set(terms(t)) <= said]
    cites = sorted(named) if len(named) >= len(things) else sorted({*claim.cited, *named} & set(sources))
    windows, evidence = [], []
    for n in dict.fromkeys([*named, *cites, *_named_pages(question, sources)]):
        if best := _closest(said, claim, sources, among=[n]):
            _, sentences, i, source = best
            windows.append(_window(source, sentences, i))
            evidence.append(sentences[i])
    if not windows:
        return None
    claim.window, claim.page = " ".join(windows), sources[named[0]]
    if set(cites) != set(claim.cited):
        claim.recited, claim.also = cites[0], cites[1:]
    return evidence[0]


def _stated_across(
    claim: Claim, facts: set[str], sources: dict[int, SourceDoc]
) -> tuple[list[int], list[str], list[str]] | None:
    """A claim about two things, each stated on its own page: "Virginia Woolf was born earlier, on
    January 25, 1882, compared to Emma Bull's birth on December 13, 1954" has one date on each
    person's page, and no sentence anywhere holds both. Only for an answer that gives the verdict of
    the engine's own comparison (``check_facts``'s ``comparison``): for any question, "David Weissman
    co-wrote Evolution with David Urban" passed (Evolution on Weissman's page, "Urban" in the other's
    title); without the engine's verdict, "Emma Bull was born earlier, on December 13, 1954, compared
    to Virginia Woolf, born on January 25, 1882" passes too: both dates right, the order wrong.
    Only pages the claim names by their title count; on each, the sentence closest to the claim
    (with its neighbours and the title) must hold some of its facts and not negate it, and together
    they must hold all of them: (the pages' numbers, their windows, their sentences), or None."""
    said = set(terms(claim.text))
    named = _named_pages(claim, sources)
    if len(named) < 2:
        return None
    found: list[tuple[int, str, str]] = []
    for n in named:

        def holds_some(source: SourceDoc, sentences: list[str], i: int) -> bool:
            window = _window(source, sentences, i)
            return any(_has_facts({f}, window) for f in facts) and not negates(sentences[i], claim.text)

        if best := _closest(said, claim, sources, among=[n], accept=holds_some):
            _, sentences, i, source = best
            found.append((n, _window(source, sentences, i), sentences[i]))
    if len(found) < 2 or not _has_facts(facts, " ".join(w for _, w, _ in found)):
        return None
    return [n for n, _, _ in found], [w for _, w, _ in found], [s for _, _, s in found]


def _stated_elsewhere(
    claim: Claim, facts: set[str], sources: dict[int, SourceDoc]
) -> tuple[int, SourceDoc, str, str] | None:
    """A retrieved source the claim does not cite whose sentence (with its neighbours and its page's
    title) holds all its facts and does not negate it, the one sharing most terms with the claim:
    (its number, the source, the window, the sentence). A small model reading several pages puts
    the right fact beside the wrong number: "... Masakazu Katsura, who was born in 1962 [1]" cites
    the manga's page, where 1962 is not; the page on Katsura, also retrieved, says it. Only a page
    the cited one names counts (the manga's page names Katsura): the hop the answer made. Any page
    with the claim's few facts on it would not do: "four years [1]" for the CJEU's president is not
    stated by a page on Warsaw that says "four" and "years" about something else."""
    cited = [sources[n] for n in claim.cited if n in sources]
    named = [
        n
        for n, source in sources.items()
        if n not in claim.cited and any(_names(page, source) for page in cited)
    ]

    def states(source: SourceDoc, sentences: list[str], i: int) -> bool:
        return _has_facts(facts, _window(source, sentences, i)) and not negates(sentences[i], claim.text)

    best = _closest(set(terms(claim.text)), claim, sources, among=named, accept=states)
    if best is None:
        return None
    _, sentences, i, source = best
    return source.n, source, _window(source, sentences, i), sentences[i]


def recite(text: str, claims: list[Claim]) -> str:
    """The text with each trimmed claim cut to its main clause and each re-attributed claim's
    markers pointing at the source that states it; the claims' spans follow the edit."""
    shift = 0
    for claim in sorted(claims, key=lambda c: c.start):
        claim.start += shift
        claim.end += shift
        if claim.recited is None and claim.trimmed is None:
            continue
        sentence = text[claim.start : claim.end]
        edited = claim.trimmed or sentence
        if claim.recited is not None:
            pages = [claim.recited, *claim.also]
            marker = "".join(f"[{n}]" for n in pages)
            edited = MARKER_RE.sub(marker, edited)
            while marker + marker in edited:
                edited = edited.replace(marker + marker, marker)
            if not MARKER_RE.search(sentence):  # an uncited claim found stated: its markers at its end
                body = edited.rstrip()
                stop = len(body) - 1 if body[-1:] in ".!?" else len(body)
                edited = body[:stop] + marker + body[stop:] + edited[len(body) :]
            claim.cited = pages
        text = text[: claim.start] + edited + text[claim.end :]
        shift += len(edited) - len(sentence)
        claim.end = claim.start + len(edited)
    return text


async def _quote(
    backend: Backend, messages: list[ChatMessage], claim: Claim, sources: dict[int, SourceDoc]
) -> tuple[bool | None, str | None]:
    """The model quotes the sentence that states the claim; the quote must be in a cited source and
    hold the claim's key facts. (verdict, the source sentence quoted)."""
    params = GenerationParams(max_tokens=QUOTE_MAX_TOKENS, temperature=0.0, top_p=1.0, stop=["\n"])
    pieces: list[str] = []
    async with contextlib.aclosing(backend.stream(messages, params)) as stream:  # type: ignore[type-var]
        async for piece in stream:
            pieces.append(piece)
    quote = "".join(pieces).strip().strip('"“”').strip()
    if not quote or quote.upper().startswith("NONE"):
        return False, None
    quoted = set(terms(quote))
    best = _closest(quoted, claim, sources)
    if best is None or best[0] / max(1, len(quoted)) < QUOTE_MATCH:
        return None, None  # not a quote of the cited source: cannot tell
    sentence = best[1][best[2]]
    return _has_facts(key_facts(claim.text), sentence), sentence


async def verify(state: RunState, backend: Backend, settings: VerifySettings) -> CitationsEvent:
    """The final citations event: the cited answer (``state.answer``) checked sentence by sentence."""
    t = time.perf_counter()
    sources = {s.n: s for s in state.sources}
    text, raw = state.answer, state.raw_answer
    claims = claims_of(text)
    checked = claims[: settings.max_sentences]
    context = [*state.messages, ChatMessage(role="assistant", content=raw)]
    comparison = compare.agrees(text, state.trace.get("compare"))
    state.trace["comparison_agrees"] = comparison
    facts: dict[str, Any] = {"radius": settings.question_coverage_window, "comparison": comparison}
    try:
        async with asyncio.timeout(settings.timeout_s):
            for claim in checked:
                if settings.mode == "facts":
                    claim.verdict, claim.evidence = check_facts(claim, sources, state.request.query, **facts)
                    if claim.verdict is False:
                        _trim(claim, text, sources, state.request.query, **facts)
                    continue
                if settings.mode == "quote":
                    prompt = QUOTE_PROMPT.format(which=_which(claim.cited), claim=claim.text)
                    ask = [*context, ChatMessage(role="user", content=prompt)]
                    claim.verdict, claim.evidence = await _quote(backend, ask, claim, sources)
                else:
                    prompt = VERIFY_PROMPT.format(which=_which(claim.cited), claim=claim.text)
                    claim.verdict = await _ask(backend, [*context, ChatMessage(role="user", content=prompt)])
                state.timings.verify_checks += 1
    except TimeoutError:
        log.warning("verification ran out of time; unchecked sentences are kept")
    except Exception as exc:  # a failing check costs the verdicts, never the answer
        log.warning("verification failed: %s", exc)
    state.trace["trimmed"] = sum(c.trimmed is not None for c in claims)
    state.trace["dependent"] = drop_dependents(claims)
    text = recite(text, claims)
    state.trace["recited"] = sum(c.recited is not None for c in claims)
    for claim in claims:
        if claim.verdict and not claim.evidence:
            claim.evidence = _evidence(claim, sources)
    bar = settings.min_question_coverage
    restated = restates(text, state.query or state.request.query)
    radius = settings.question_coverage_window
    if restated or (bar and not about_the_question(state, checked, sources, bar, radius)):
        for claim in claims:
            claim.verdict = False
    state.timings.verify_ms = state.ms_since(t)
    state.trace["answer_restates"] = restated

    support: AnswerSupport | None
    if claims and all(c.verdict is None for c in claims):  # the verifier could not judge anything
        final, support = text, None
    elif not claims and not restated:  # nothing stated to check: the text as written
        final, support = text, "not_supported"
    elif restated or all(c.verdict is False for c in claims):
        final, support = not_covered(state.sources), "not_supported"
    else:
        final = _without(text, [c for c in claims if c.verdict is False])
        support = "supported" if all(c.verdict for c in claims) else "partly_supported"
    return citations_event(final, claims, sources, support)


def about_the_question(
    state: RunState, checked: list[Claim], sources: dict[int, SourceDoc], bar: float, radius: int = 1
) -> bool:
    """Whether the evidence of the checked sentences not found unsupported, taken together, holds
    ``bar`` of the question's terms weighed by their rarity: an answer whose every fact is on the
    page can still be about something else than what was asked ("Juzjani told the story of the
    prodigal son [1]", cited to a page on Juzjani that never mentions the parable). The evidence of
    a claim includes the one sentence of another source that names the cited page (``_link``): a
    two-page answer's question is half on the page that leads to the cited one. True when there is
    nothing to judge."""
    for claim in checked:
        if claim.window is None and (best := _closest(set(terms(claim.text)), claim, sources)):
            _, sentences, i, claim.page = best
            claim.window = _window(claim.page, sentences, i, radius)
    kept = [c for c in checked if c.verdict is not False and c.window]
    question = state.query or state.request.query
    wanted = terms(question)
    if not kept or not wanted:
        return True
    pages = {c.page.n: c.page for c in kept if c.page}
    asked = set(wanted)
    links = [link for page in pages.values() if (link := _link(page, sources, asked))]
    windows = [c.window for c in kept if c.window] + links
    # terms are accent-folded: a name asked without its accents ("Gospic") is the page's ("Gospić")
    evidence = Passage(page=0, order=0, text=" ".join(windows))
    share = coverage(wanted, [evidence], state.term_weights or None)
    state.trace["answer_coverage"] = share
    return share is None or share >= bar


_CHOICE_RE = re.compile(r"\bor\b", re.IGNORECASE)


@functools.cache
def _wh_words() -> frozenset[str]:
    return frozenset(terms("what which who whom whose when where why how"))


def restates(answer: str, question: str) -> bool:
    """Whether the answer only says the question back: each of its terms is one of the question's,
    and each two that follow each other in it follow each other in the question. "D1NZ is a series
    based on oversteering technique", "New York City" (for "based in what New York city?") and
    "Rabat" (for "... the Rabat-Salé-Kénitra region ...") add nothing the reader did not say; the
    facts check passes them (there is no fact to hold) and the question-coverage check too (every
    term asked is there). "Kansas Song" (for "the fight song of the university ... in Lawrence,
    Kansas") puts two of the question's words together anew: an answer. A yes or no, or one of the
    things a question offers to choose between ("..., Lev Yilmaz or Pamela B. Green?"), is an answer
    made of the question's words, so neither counts."""
    answer = MARKER_RE.sub(" ", answer)
    said = terms(answer)
    asked = [t for t in terms(question) if t not in _wh_words()]  # the answer's place, left empty
    if not said or _YES_RE.match(answer) or _CHOICE_RE.search(question):
        return False
    if set(_NUMBER_RE.findall(answer)) - set(_NUMBER_RE.findall(question)):
        return False  # "6.7", "1/6": numbers terms() does not keep
    pairs = set(zip(asked, asked[1:]))
    return set(said) <= set(asked) and all(pair in pairs for pair in zip(said, said[1:]))


_PARENTHESIS_RE = re.compile(r"\s*\([^)]*\)")


def _title_terms(source: SourceDoc) -> set[str]:
    """A page's name as a sentence says it: "Sullivan County" of "Sullivan County, New Hampshire",
    "Buck-Tick" of "Buck-Tick (band)"."""
    return set(terms(_PARENTHESIS_RE.sub("", source.title).split(",")[0]))


def _names(source: SourceDoc, other: SourceDoc) -> bool:
    """Whether a sentence of ``source`` names the page ``other``."""
    title = _title_terms(other)
    return bool(title) and any(
        title <= set(terms(sentence)) for p in source.passages for sentence in split_sentences(p.text)
    )


def _link(cited: SourceDoc, sources: dict[int, SourceDoc], wanted: set[str]) -> str | None:
    """The sentence of another source that names the cited page and shares most of the question's
    terms: the bridge of a two-page answer. "What is the county seat of the county where East
    Lempster is?" is answered by the page titled Sullivan County ("Its county seat is Newport"); the
    question's own subject is on the East Lempster page, in the sentence that names Sullivan County.
    None when no other source names the cited page."""
    title = _title_terms(cited)
    if not title:
        return None
    best: tuple[int, str] | None = None
    for source in sources.values():
        if source.n == cited.n:
            continue
        for passage in source.passages:
            for sentence in split_sentences(passage.text):
                have = set(terms(sentence))
                if title <= have and (best is None or len(have & wanted) > best[0]):
                    best = (len(have & wanted), sentence)
    return best[1] if best else None


def _without(text: str, dropped: list[Claim]) -> str:
    for claim in sorted(dropped, key=lambda c: -c.start):
        end = claim.end
        while end < len(text) and text[end] == " ":
            end += 1
        text = text[: claim.start] + text[end:]
    return text.strip()


def citations_event(
    final: str, claims: list[Claim], sources: dict[int, SourceDoc], support: AnswerSupport | None
) -> CitationsEvent:
    """Citations are exactly the sources the final text cites, in order of first use."""
    cited = [n for m in MARKER_RE.finditer(final) for n in (parse_marker(m.group(0)) or []) if n in sources]
    evidence: dict[int, str] = {}
    for claim in claims:
        for n in claim.cited:
            if claim.verdict and claim.evidence and n not in evidence:
                evidence[n] = claim.evidence
    return CitationsEvent(
        citations=[
            Citation(n=n, url=sources[n].url, title=sources[n].title, evidence=evidence.get(n))
            for n in dict.fromkeys(cited)
        ],
        answer=final,
        answer_support=support,
        sentences=[
            SentenceSupport(text=c.text, citations=c.cited, supported=c.verdict, evidence=c.evidence)
            for c in claims
        ],
    )
