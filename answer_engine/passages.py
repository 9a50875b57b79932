"""Passages: the one chunker of the project (``chunk_text``: the index stores its passages, and
pages read from the web are cut by it at question time), ranking passages against the question
(BM25 over the candidates, weighted by the page's search score, mixed with embedding similarity),
keeping the best that fit a token budget, and grouping them into numbered sources for the prompt."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from answer_engine.text import approx_tokens, bm25s, pack_words, split_sentences, terms

MIN_PASSAGE_WORDS = 8  # headings, captions and menu crumbs are not passages
# A passage scoring below this share of the best passage's BM25 score is mostly noise that only
# costs prefill time (every prompt token is latency on a CPU: ../shared/BASELINES.md).
MIN_RELATIVE_SCORE = 0.5
PAGE_WEIGHT = 0.7  # on 400 SQuAD questions: 0.887 -> 0.910 of answers selected, ~10% fewer tokens


@dataclass
class Passage:
    page: int  # index into the list of pages read for this question
    text: str
    score: float = 0.0
    order: int = 0  # position within its page
    id: int | None = None  # the stored passage (and embedding) in the local index; None: read just now


@dataclass
class ReadPage:
    """A page read for this question, cut into passages: from the index's store, or fetched,
    extracted and chunked just now (or only the search snippet, when the page could not be read)."""

    url: str
    title: str
    passages: list[Passage]
    score: float = 0.0  # the search engine's score of the page (1/rank when it gives none)
    from_snippet: bool = False
    date: str | None = None
    provider: str = ""


@dataclass
class SourceDoc:
    """One numbered source of the prompt: a page and the passages of it that were selected."""

    n: int
    url: str
    title: str
    passages: list[Passage] = field(default_factory=list)
    from_snippet: bool = False
    date: str | None = None
    provider: str = ""

    @property
    def text(self) -> str:
        ordered = sorted(self.passages, key=lambda p: p.order)
        return " … ".join(p.text for p in ordered)


def chunk_text(text: str, chunk_words: int) -> list[str]:
    """Split text into sentence-aligned passages of about ``chunk_words`` words.

    Paragraphs up to 1.4x the target stay whole; longer ones are packed sentence by sentence.
    Paragraphs under MIN_PASSAGE_WORDS (headings, crumbs) are skipped, unless the whole text is
    made of such lines: a short document (a note, a one-line record) is one passage, not none.
    """
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    if paragraphs and all(len(p.split()) < MIN_PASSAGE_WORDS for p in paragraphs):
        return pack_words(paragraphs, chunk_words)
    out: list[str] = []
    for para in paragraphs:
        words = len(para.split())
        if words < MIN_PASSAGE_WORDS:
            continue
        if words <= chunk_words * 1.4:
            out.append(para)
            continue
        packed = pack_words(split_sentences(para, abbreviations=False), chunk_words)
        if len(packed) > 1 and len(packed[-1].split()) < MIN_PASSAGE_WORDS * 2:
            packed[-2:] = [f"{packed[-2]} {packed[-1]}"]  # no stub passage at a paragraph's end
        out.extend(packed)
    return out


def page_passages(page: int, text: str, chunk_words: int) -> list[Passage]:
    """The passages of a page read just now (no stored ids)."""
    return [Passage(page=page, text=chunk, order=j) for j, chunk in enumerate(chunk_text(text, chunk_words))]


def rank_passages(question: str, pages: list[ReadPage], page_weight: float = PAGE_WEIGHT) -> list[Passage]:
    """All passages of all pages, best first, scored by BM25 over this candidate set.

    The pages' search scores weigh each passage by how well its whole page matched: within a
    handful of pages, a passage's own BM25 alone over-rewards a word like "born" that happens to be
    rare in this small set.
    """
    passages = [p for page in pages for p in page.passages]
    page_scores = [page.score for page in pages]
    q = terms(question)
    if not passages:
        return []
    if q:
        retriever = bm25s().BM25()
        retriever.index([terms(f"{pages[p.page].title} {p.text}") for p in passages], show_progress=False)
        docs, scores = retriever.retrieve([q], k=len(passages), show_progress=False)
        for doc, score in zip(docs[0].tolist(), scores[0].tolist()):
            passages[doc].score = float(score)
        if max(page_scores) > 0:
            top = max(page_scores)
            for p in passages:
                p.score *= (1 - page_weight) + page_weight * max(page_scores[p.page], 0.0) / top
    # Ties (and a question with no usable terms) fall back to search order, then page order.
    return sorted(passages, key=lambda p: (-p.score, p.page, p.order))


def hybrid_rerank(
    ranked: list[Passage],
    dense: list[float],
    page_scores: list[float] | None,
    *,
    weight: float,
    page_weight: float = PAGE_WEIGHT,
) -> list[Passage]:
    """Mix each passage's BM25 score with its embedding similarity to the question.

    Both are scaled to [0, 1] by their best value over the candidates, the dense one weighted by
    the page's search score like BM25 already is; ``weight`` is the share of the dense score.
    On 800 SQuAD questions (top 6 pages, 5 passages): BM25 alone puts the answer in the selected
    passages 0.913 of the time, weight 0.7 does 0.948.
    """
    if not ranked:
        return ranked
    top_bm25 = max(p.score for p in ranked) or 1.0
    if page_scores and max(page_scores) > 0:
        top_page = max(page_scores)
        dense = [
            d * ((1 - page_weight) + page_weight * max(page_scores[p.page], 0.0) / top_page)
            for d, p in zip(dense, ranked)
        ]
    top_dense = max(max(dense), 1e-9)
    for p, d in zip(ranked, dense):
        p.score = (1 - weight) * p.score / top_bm25 + weight * max(d, 0.0) / top_dense
    return sorted(ranked, key=lambda p: (-p.score, p.page, p.order))


def select_passages(
    ranked: list[Passage],
    *,
    max_passages: int,
    token_budget: int,
    min_relative_score: float = MIN_RELATIVE_SCORE,
) -> list[Passage]:
    chosen: list[Passage] = []
    used = 0
    floor = ranked[0].score * min_relative_score if ranked else 0.0
    for passage in ranked:
        if len(chosen) >= max_passages or (chosen and passage.score < floor):
            break
        cost = approx_tokens(passage.text)
        if chosen and used + cost > token_budget:
            continue  # a smaller passage further down may still fit
        chosen.append(passage)
        used += cost
    # Keep scored passages when there are any: a zero-score passage shares no term with the question.
    if any(p.score > 0 for p in chosen):
        chosen = [p for p in chosen if p.score > 0]
    return chosen


GAP = " … "


def focus_passages(question: str, chosen: list[Passage], token_budget: int) -> list[Passage]:
    """Keep the best passage whole and, of the others, only the sentences that best match the
    question, within ``token_budget``: each sentence scores the IDF (over these sentences) of the
    question terms it holds, weighted by its passage's score; the best are kept, in page order,
    dropped stretches inside a passage marked with an ellipsis. A passage left with no sentence is
    dropped. The best passage stays whole because a 1.5B model answers worse from sentences cut out
    of their context (docs/reports/speed).

    On 2,000 SQuAD questions (docs/reports/speed): whole passages put the answer in the prompt
    0.950 of the time at ~515 passage tokens (p50); focused to 450, 0.947 at ~435."""
    if not chosen:
        return chosen
    q = set(terms(question))
    units = [
        (i, j, s, set(terms(s))) for i, p in enumerate(chosen) for j, s in enumerate(split_sentences(p.text))
    ]
    n = len(units)
    df: dict[str, int] = {}
    for *_, words in units:
        for t in words & q:
            df[t] = df.get(t, 0) + 1
    idf = {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in q}
    top = max(p.score for p in chosen) or 1.0
    weight = [max(p.score, 0.0) / top if top > 0 else 1.0 for p in chosen]
    scores = [sum(idf[t] for t in words & q) * weight[i] for i, _, _, words in units]
    keep = {x for x in range(n) if units[x][0] == 0}
    used = sum(approx_tokens(units[x][2]) for x in keep)
    for x in sorted(range(n), key=lambda x: (-scores[x], x)):
        if x in keep:
            continue
        cost = approx_tokens(units[x][2])
        if keep and used + cost > token_budget:
            continue
        keep.add(x)
        used += cost
    out: list[Passage] = []
    for i, passage in enumerate(chosen):
        mine = [x for x in range(n) if units[x][0] == i]
        kept = [x for x in mine if x in keep]
        if not kept:
            continue
        text = ""
        for k, x in enumerate(kept):
            sep = " " if k and x == kept[k - 1] + 1 else GAP if k else ""
            text += sep + units[x][2]
        out.append(replace(passage, text=text))
    return out


def group_sources(chosen: list[Passage], pages: list[ReadPage]) -> list[SourceDoc]:
    """Number sources by their best passage: [1] is the page holding the best-ranked passage."""
    by_page: dict[int, SourceDoc] = {}
    for passage in chosen:
        if passage.page not in by_page:
            page = pages[passage.page]
            by_page[passage.page] = SourceDoc(
                n=len(by_page) + 1,
                url=page.url,
                title=page.title or page.url,
                from_snippet=page.from_snippet,
                date=page.date,
                provider=page.provider,
            )
        by_page[passage.page].passages.append(passage)
    return list(by_page.values())


def coverage(
    question_terms: list[str], passages: list[Passage], idf: dict[str, float] | None
) -> float | None:
    """How much of the question one passage speaks to: the best passage's share of the question's
    terms, each weighed by its rarity in the index (``idf``; equal weights without one). A passage
    that holds "nuclear" but not "reactor" or "invented" covers the common part of "who invented the
    first nuclear reactor", not the part that names what is asked about. None for a question with
    no terms."""
    wanted = list(dict.fromkeys(question_terms))
    if not wanted:
        return None
    weight = {t: (idf or {}).get(t, 1.0) for t in wanted}
    total = sum(weight.values())
    best = 0.0
    for passage in passages:
        have = set(terms(passage.text))
        best = max(best, sum(w for t, w in weight.items() if t in have) / total)
    return round(best, 4)
