"""plan: what to search for, and how many times.

- **Rewrite**: in a thread, the model turns the last question into a standalone search query
  ("and when did he die?" -> "Frédéric Chopin death date"); a thread that changed topic keeps its
  question. Without a model (or when it fails) the previous question is glued in front of a short
  follow-up, as before.
- **Search type** (Perplexity's ``web_search_options.search_type``): ``fast`` searches once;
  ``pro`` searches, reads, asks the model for the one search that would find the missing fact (the
  bridge entity of a multi-hop question, self-ask / IRCoT style), and searches again, within a
  budget of searches, tokens and a deadline, stopping as soon as the model says the passages are
  enough; ``auto`` takes ``pro`` for questions shaped like multi-hop ones (a cheap lexical signal,
  no model call) and ``fast`` for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from answer_engine.backends.base import Backend, GenerationParams
from answer_engine.config import PlanSettings
from answer_engine.events import Timings
from answer_engine.request import AskRequest, ChatMessage, SearchType
from answer_engine.text import split_sentences, terms, truncate_words

log = logging.getLogger(__name__)

FOLLOW_UP_WORDS = 8  # without a model: a question shorter than this in a thread is read as a follow-up
HISTORY_TURNS = 4  # the last turns of the thread the rewrite sees
HISTORY_WORDS = 60  # each trimmed to this many words
REWRITE_MAX_TOKENS = 48
STEP_MAX_TOKENS = 32
STEP_PASSAGES = 3  # passages shown to the model when it plans the next search ...
STEP_SENTENCES = 2  # ... each by its sentences closest to the question (fewer prompt tokens)
STEP_SENTENCE_CHARS = 300
DONE = "DONE"

REWRITE_SYSTEM = """You rewrite the last question of a conversation into a standalone web search query.
Replace every pronoun or vague reference (he, she, it, they, there, that, the same) with the name it refers to in the conversation.
If the last question does not refer to the conversation, repeat it unchanged.
Reply with the search query only, on one line."""  # noqa: E501

STEP_SYSTEM = """You plan web searches for a question whose answer needs facts from several pages.
You see the question, the searches made so far, and what they found.
Reply DONE only if the found text states the answer to the question itself.
Otherwise reply with ONE new search query for the missing fact, using the name the found text gives for the thing that links the question to its answer (a person, place, team, work or organisation).
Reply with DONE or the query only, on one line."""  # noqa: E501

# Asked instead when the model said DONE (or repeated a search) before pro's fewest searches were
# made (plan.min_searches, off by default: not measured yet). In hotpot-pro2 all three DONEs after
# the first search were premature (the found text named the bridge, "written by Masakazu Katsura",
# but not the asked fact, his birth year).
STEP_MORE_SYSTEM = """You plan web searches for a question whose answer needs facts from several pages.
You see the question, the searches made so far, and what they found. One search is not enough for this question.
Reply with ONE new search query for the missing fact, different from the searches so far, using the name the found text gives for the thing that links the question to its answer (a person, place, team, work or organisation).
Reply with the query only, on one line."""  # noqa: E501

# Asked after a bare number the found text does not hold, in the same conversation: the model
# answered from memory. Asked the step again without it, the 1.5B model gave the same year
# (hotpot-pro4: the VCU and Ichitaka Seto questions, "1962" twice and "1970" twice).
GUESS_FOLLOW_UP = """That is an answer from memory, not a search query. Reply instead with the search query that finds the page stating the answer: the name of the person, place or organisation the question asks about, then the fact asked. The query only, on one line."""  # noqa: E501

STEP_EXAMPLE_USER = """Question: What is the county seat of the county where East Lempster is located?
Searches so far: East Lempster county
Found:
- East Lempster: East Lempster is an unincorporated community in the town of Lempster in Sullivan County, New Hampshire.

Next search:"""  # noqa: E501
STEP_EXAMPLE_REPLY = "Sullivan County New Hampshire county seat"

# auto: questions shaped like multi-hop ones, without a model call. A choice between two named
# things ("..., Henry Roth or Robert Erskine Childers?"), or a long question (12+ words) that names
# two or more things or modifies a noun by a clause about another ("the county where X is").
# On the shared sets: 79% of HotpotQA questions, 14% of SQuAD's (docs/reports/multistep).
AUTO_MIN_WORDS = 12
_CHOICE = re.compile(r"\b[A-Z][^,?]*\s+or\s+[A-Z][^?]*\?\s*$")
_NAMED = re.compile(r'"[^"]+"|(?:[A-Z][\w.\'’-]*|\d{4})(?:\s+(?:of|the|de|von|and|&)?\s*[A-Z][\w.\'’-]*)*')
_RELATIVE = re.compile(
    r"\b(?:the|a|an|this|which|what)\s+(?:[\w'-]+\s+){0,3}?(?:that|which|who|whom|whose|where|when)\s+"
    r"(?!is\s+the\b|are\s+the\b|was\s+the\b|were\s+the\b)",
    re.IGNORECASE,
)
_COMPARISON = re.compile(
    r"\b(?:both|same|either|neither|older|younger|first|earlier|later|larger|smaller|longer|shorter|"
    r"taller|bigger|more|fewer|less)\b[^?]*\bor\b|\b(?:both|same)\b[^?]*\band\b|\band\b[^?]*\b(?:both|same)\b",
    re.IGNORECASE,
)


def named_things(question: str) -> set[str]:
    """Capitalised spans, quoted titles and years after the question's first word."""
    body = question.split(" ", 1)[1] if " " in question else ""
    return {m.group(0) for m in _NAMED.finditer(body)}


def needs_steps(question: str) -> bool:
    """auto's signal: does the question look like it needs more than one search? No model call."""
    if _CHOICE.search(question) or compared(question):
        return True
    if len(question.split()) < AUTO_MIN_WORDS:
        return False
    return bool(
        len(named_things(question)) >= 2 or _RELATIVE.search(question) or _COMPARISON.search(question)
    )


_OPTIONS = re.compile(r"(?:,|\bbetween)\s+([^,?]+?)\s+(?:or|and)\s+([^,?]+?)\s*\?\s*$")
_PAIR = re.compile(
    r"^\s*(?:Are|Were|Is|Was|Do|Did|Does|Have|Has|What|Which|Who)\s+(.+?)\s+and\s+(.+?)\s+"
    r"(?:both|the same|share|of the same|located|from)\b",
    re.IGNORECASE,
)
_BOTH = re.compile(r"\bboth\s+(?:the\s+)?([A-Z][^,?]*?),?\s+and\s+([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)")
_NAMED_PAIR = re.compile(
    r"\b([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)\s+and\s+([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*)\s+(?:both|share)\b"
)


def compared(question: str) -> list[str]:
    """The two things a comparison question compares ("Who is older, Annie Morton or Terry
    Richardson?", "Are Local H and For Against both from the United States?"), or []: each gets a
    search of its own, no model call needed."""
    for pattern in (_OPTIONS, _PAIR, _BOTH, _NAMED_PAIR):
        if m := pattern.search(question):
            options = [o.strip().strip("\"'") for o in m.groups()]
            options = [re.sub(r"^(?:the|a|an)\s+", "", o, flags=re.IGNORECASE) for o in options]
            if all(o and len(o.split()) <= 8 and o[0].isupper() for o in options):
                return options
    return []


def resolve(search_type: SearchType, question: str, *, can_plan: bool) -> Literal["fast", "pro"]:
    """The search type a question gets: pro needs a model that can plan (not the extractive one)."""
    if not can_plan or search_type == "fast":
        return "fast"
    if search_type == "pro":
        return "pro"
    return "pro" if needs_steps(question) else "fast"


def glued(request: AskRequest) -> str:
    """Without a model: a short follow-up searched with the thread's previous question before it."""
    previous = [m.content for m in request.history if m.role == "user"]
    if previous and len(request.query.split()) < FOLLOW_UP_WORDS:
        return f"{previous[-1]} {request.query}"
    return request.query


@dataclass
class PlanUse:
    """What the plan stage's model calls cost, added to the answer's timings."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ms: float = 0.0
    more: int = 0  # steps asked again: the model stopped before pro's fewest searches, or guessed

    def add_to(self, timings: Timings) -> None:
        timings.plan_calls += self.calls
        timings.plan_prompt_tokens += self.prompt_tokens
        timings.plan_completion_tokens += self.completion_tokens
        timings.plan_ms = round(timings.plan_ms + self.ms, 1)


async def ask_model(
    backend: Backend, messages: list[ChatMessage], *, max_tokens: int, timeout_s: float, use: PlanUse
) -> str | None:
    """One short greedy generation: its first line, or None when the model failed or ran out of time."""
    t = time.perf_counter()
    pieces: list[str] = []
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0, stop=["\n"])
    try:
        use.prompt_tokens += await asyncio.to_thread(backend.count_prompt_tokens, messages)
        async with asyncio.timeout(timeout_s):
            async with contextlib.aclosing(backend.stream(messages, params)) as stream:  # type: ignore[type-var]
                async for piece in stream:
                    pieces.append(piece)
    except TimeoutError:
        log.warning("plan: the model did not answer within %.1fs", timeout_s)
        return None
    except Exception as exc:  # planning is an aid: a failure costs the step, never the answer
        log.warning("plan: the model failed: %s", exc)
        return None
    finally:
        use.calls += 1
        use.ms += (time.perf_counter() - t) * 1000
    text = "".join(pieces)
    use.completion_tokens += await asyncio.to_thread(backend.count_tokens, text) if text else 0
    return clean_query(text)


_LABEL = re.compile(r"^\s*(?:standalone\s+)?(?:search\s+)?(?:query|next search|search)\s*:\s*", re.IGNORECASE)


def clean_query(text: str) -> str:
    """The model's line as a query: no label, quotes, bullets or trailing punctuation."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line.strip())
    line = re.sub(r"^(?:[-*•]|\d{1,2}[.)])\s+", "", line).strip().strip("\"'`").strip()
    return line.rstrip(".").strip()


def _thread(history: Sequence[ChatMessage]) -> str:
    turns = [m for m in history if m.role in ("user", "assistant")][-HISTORY_TURNS:]
    return "\n".join(
        f"{'User' if m.role == 'user' else 'Assistant'}: {truncate_words(m.content, HISTORY_WORDS * 7)}"
        for m in turns
    )


def rewrite_messages(request: AskRequest) -> list[ChatMessage]:
    user = f"Conversation:\n{_thread(request.history)}\n\nLast question: {request.query}\n\nSearch query:"
    return [ChatMessage(role="system", content=REWRITE_SYSTEM), ChatMessage(role="user", content=user)]


async def rewrite(
    request: AskRequest, backend: Backend | None, settings: PlanSettings, use: PlanUse
) -> tuple[str, bool]:
    """(the search query for this question, whether the model wrote it).

    No thread: the question itself, no model call. A thread: the model's standalone query, or the
    glued fallback when there is no model, rewriting is off, or the model's line is unusable."""
    if not any(m.role == "user" for m in request.history):
        return request.query, False
    if backend is None or not settings.rewrite:
        return glued(request), False
    query = await ask_model(
        backend,
        rewrite_messages(request),
        max_tokens=REWRITE_MAX_TOKENS,
        timeout_s=settings.step_timeout_s,
        use=use,
    )
    if not query or len(query) > max(200, 3 * len(request.query)) or not terms(query):
        return glued(request), False
    return query, True


def gist(question: str, text: str) -> str:
    """The passage's sentences sharing most terms with the question, in their order."""
    wanted = set(terms(question))
    sentences = split_sentences(text)
    best = sorted(range(len(sentences)), key=lambda i: (-len(wanted & set(terms(sentences[i]))), i))
    return " ".join(truncate_words(sentences[i], STEP_SENTENCE_CHARS) for i in sorted(best[:STEP_SENTENCES]))


def spent(settings: PlanSettings, *, searches: int, left_s: float, use: PlanUse) -> str | None:
    """Which part of a pro answer's budget is spent (searches, time, tokens), or None."""
    if searches >= settings.max_searches:
        return "searches"
    if left_s <= 0:
        return "time"
    if use.prompt_tokens + use.completion_tokens >= settings.max_tokens:
        return "tokens"
    return None


def step_messages(
    question: str, asked: list[str], found: list[tuple[str, str]], *, more: bool = False, example: bool = True
) -> list[ChatMessage]:
    lines = "\n".join(f"- {title}: {gist(question, text)}" for title, text in found)
    user = (
        f"Question: {question}\nSearches so far: {'; '.join(asked)}\n"
        f"Found:\n{lines or '- nothing'}\n\nNext search:"
    )
    shown = [
        ChatMessage(role="user", content=STEP_EXAMPLE_USER),
        ChatMessage(role="assistant", content=STEP_EXAMPLE_REPLY),
    ]
    return [
        ChatMessage(role="system", content=STEP_MORE_SYSTEM if more else STEP_SYSTEM),
        *(shown if example else []),
        ChatMessage(role="user", content=user),
    ]


_REFUSAL_RE = re.compile(
    r"^\W*(?:I'?m sorry|sorry\b|I (?:can(?:'|no)t|am unable))|can(?:'|no)t assist", re.IGNORECASE
)


def _pairs(text: str) -> set[tuple[str, str]]:
    said = terms(text)
    return set(zip(said, said[1:]))


@functools.cache
def _example_pairs() -> set[tuple[str, str]]:
    """The worked example's two-word names (Sullivan County, New Hampshire, East Lempster ...)."""
    return _pairs(STEP_EXAMPLE_USER) | _pairs(STEP_EXAMPLE_REPLY)


def copies_the_example(reply: str, question: str, found: list[tuple[str, str]]) -> bool:
    """A search that names two words of the prompt's worked example together (``_example_pairs``)
    which neither the question nor the found text puts together is the example copied, not a
    search: "Suffolk County New Hampshire" for a hamlet the found text places in Lincolnshire
    (HotpotQA's Kirton End question, hotpot-pro4)."""
    copied = _pairs(reply) & _example_pairs()
    if not copied:
        return False
    seen = _pairs(question).union(*(_pairs(f"{title}. {text}") for title, text in found))
    return bool(copied - seen)


def names_anything(query: str) -> bool:
    """A search query names something: one of its terms has a letter ("1962" or "3, 4" do not)."""
    return any(any(c.isalpha() for c in t) for t in terms(query))


def _in_found(reply: str, found: list[tuple[str, str]]) -> bool:
    said = " ".join(reply.split()).lower()
    return any(said in " ".join(text.split()).lower() for _, text in found)


def _same_search(a: str, b: str) -> bool:
    """The same terms. A part of an earlier search is a new one: "Big Stone Gap director" finds the
    director's page where the whole question found the film's."""
    return set(terms(a)) == set(terms(b))


async def next_search(
    question: str,
    asked: list[str],
    found: list[tuple[str, str]],
    backend: Backend,
    settings: PlanSettings,
    use: PlanUse,
    *,
    timeout_s: float,
) -> tuple[str | None, str]:
    """(the next search for a multi-hop question, or None; why it stops): "enough" (the model said
    DONE), "no answer" (it failed or ran out of time), "repeat" (a search already made), "guess"
    (twice a bare number the found text does not hold: the model answering from memory), "copied"
    (twice a name from the prompt's worked example: ``copies_the_example``).

    Before ``settings.min_searches`` searches are made, a DONE or a repeat is not taken: the model
    is asked once more, told that one search is not enough (``use.more`` counts these)."""
    more = False
    guessed: list[ChatMessage] = []
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await ask_model(
            backend,
            # after a guess, without the worked example: the model copied it when told to search
            [*step_messages(question, asked, found, more=more, example=not guessed), *guessed],
            max_tokens=STEP_MAX_TOKENS,
            timeout_s=max(min(deadline - time.monotonic(), settings.step_timeout_s), 0.01),
            use=use,
        )
        if reply is None:
            return None, "no answer"
        why = ""
        if _REFUSAL_RE.search(reply):
            return None, "no answer"  # "I'm sorry, but I can't assist with that" is no search
        if reply.upper().startswith(DONE) or not terms(reply):
            why = "enough"
        elif not names_anything(reply):
            # a bare number ("1962") is the model answering, not searching: taken as DONE when the
            # found text says it, else it guessed, and it is asked again for a search
            why = "enough" if _in_found(reply, found) else "guess"
        elif any(_same_search(reply, a) for a in asked):
            why = "repeat"
        elif copies_the_example(reply, question, found):
            why = "copied"
        if not why:
            return reply, ""
        if more or (why not in ("guess", "copied") and len(asked) >= settings.min_searches):
            return None, why
        more = True
        use.more += 1
        if why == "guess":  # told what it did, in the same conversation: asked alike, it guessed alike
            guessed = [
                ChatMessage(role="assistant", content=reply),
                ChatMessage(role="user", content=GUESS_FOLLOW_UP),
            ]
