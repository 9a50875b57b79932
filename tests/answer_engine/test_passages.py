from answer_engine.passages import (
    Passage,
    ReadPage,
    chunk_text,
    focus_passages,
    group_sources,
    hybrid_rerank,
    page_passages,
    rank_passages,
    select_passages,
)
from answer_engine.text import approx_tokens


def page(n, url, text, title="T", score=1.0):
    return ReadPage(url=url, title=title, passages=page_passages(n, text, 90), score=score)


def test_chunks_are_sentence_aligned_and_skip_crumbs():
    sentence = "The quick brown fox jumps over the lazy dog again and again. "
    text = "Home\n" + sentence * 30 + "\nShort line\n" + sentence * 2
    chunks = chunk_text(text, 40)
    assert all(c.endswith(".") for c in chunks)
    assert "Home" not in chunks[0] and all("Short line" not in c for c in chunks)
    assert all(len(c.split()) <= 40 * 1.4 + 12 for c in chunks)


def test_rank_uses_bm25_and_page_score():
    pages = [
        page(0, "a", "Paris is the capital of France and its largest city by far.", score=1.0),
        page(1, "b", "The capital of France is Paris, a city on the Seine river in the north.", score=0.1),
    ]
    ranked = rank_passages("capital of France", pages)
    assert ranked[0].page == 0  # equal BM25 terms: the better search hit wins


def test_select_respects_count_budget_and_relative_floor():
    ranked = [
        Passage(page=0, text="w " * 50, score=10),
        Passage(page=1, text="w " * 50, score=9),
        Passage(page=2, text="w " * 50, score=2),
    ]
    assert len(select_passages(ranked, max_passages=5, token_budget=1000)) == 2  # 2 < 0.5 x 10
    assert len(select_passages(ranked, max_passages=1, token_budget=1000)) == 1
    assert len(select_passages(ranked, max_passages=5, token_budget=100, min_relative_score=0)) == 1


def test_hybrid_rerank_mixes_scaled_scores():
    ranked = [Passage(page=0, text="a", score=4.0), Passage(page=0, text="b", score=2.0)]
    out = hybrid_rerank(ranked, [0.2, 0.8], None, weight=0.7)
    assert [p.text for p in out] == ["b", "a"]
    assert abs(out[0].score - (0.3 * 0.5 + 0.7 * 1.0)) < 1e-9


def test_sources_numbered_by_best_passage():
    pages = [page(0, "a", "x"), page(1, "b", "y")]
    pages[1].from_snippet = True
    chosen = [
        Passage(page=1, text="y1", score=3),
        Passage(page=0, text="x1", score=2),
        Passage(page=1, text="y0", score=1, order=-1),
    ]
    sources = group_sources(chosen, pages)
    assert [(s.n, s.url) for s in sources] == [(1, "b"), (2, "a")]
    assert sources[0].text == "y0 … y1"  # in page order
    assert sources[0].from_snippet and not sources[1].from_snippet


def test_a_short_document_is_one_passage_not_none():
    assert chunk_text("Staff get 30 days of paid leave.", 90) == ["Staff get 30 days of paid leave."]
    assert chunk_text("Title\nShort line one\nShort line two", 90) == ["Title Short line one Short line two"]
    assert chunk_text("  \n ", 90) == []


def test_focus_keeps_the_best_passage_whole_and_the_matching_sentences_of_the_others():
    filler = "The river valley has many small farms and quiet villages along its banks."
    best = Passage(
        page=0, text=f"{filler} The bridge over the river was opened in 1937 by the mayor.", score=2.0
    )
    closed = "The old bridge over the river was closed to traffic in 1990."
    other = Passage(page=1, text=f"{filler} {closed} {filler}", score=1.0)
    focused = focus_passages("When was the bridge over the river opened?", [best, other], token_budget=55)
    assert [p.text for p in focused] == [best.text, closed]
    assert sum(approx_tokens(p.text) for p in focused) <= 55
    assert other.text.startswith(filler)  # the chosen passages themselves are left as they were


def test_focus_marks_a_dropped_stretch_and_drops_a_passage_with_nothing_kept():
    best = Passage(page=0, text="The church was founded in 1968.", score=2.0)
    text = (
        "Albert C. Outler was the first United Methodist theologian. "
        "He taught for many years. The church grew. Outler wrote on Wesley as a theologian."
    )
    passage = Passage(page=1, text=text, score=1.0)
    unrelated = Passage(page=2, text="Cats sleep for most of the day in warm places.", score=0.9)
    focused = focus_passages("Who was the first United Methodist theologian?", [best, passage, unrelated], 34)
    # "Albert C." does not end a sentence; the sentences between the two kept ones become an ellipsis
    assert [p.text for p in focused] == [
        best.text,
        "Albert C. Outler was the first United Methodist theologian. … "
        "Outler wrote on Wesley as a theologian.",
    ]


def test_focus_keeps_the_best_passage_even_over_the_budget():
    long = Passage(page=0, text="The answer to the riddle " + "is long " * 40 + ".", score=1.0)
    other = Passage(page=1, text="The riddle has an answer.", score=0.8)
    assert focus_passages("riddle answer", [long, other], token_budget=5) == [long]
    assert focus_passages("anything", [], token_budget=100) == []
