"""Wire the configured parts into a pipeline: the one place configuration picks implementations."""

from __future__ import annotations

from answer_engine.backends import create_backend
from answer_engine.backends.base import Backend
from answer_engine.config import Settings
from answer_engine.embeddings import Embedder
from answer_engine.pipeline import Pipeline
from search_adapters.local import LocalIndex


def build_embedder(settings: Settings) -> Embedder | None:
    return Embedder(threads=settings.generation.n_threads or None) if settings.retrieval.dense_weight > 0 else None


def build_index(settings: Settings, embedder: Embedder | None = None) -> LocalIndex:
    return LocalIndex(
        settings.data_dir, include_default_corpus=settings.search.include_default_corpus, embedder=embedder,
        passage_words=settings.retrieval.chunk_words,
    )


def build_pipeline(settings: Settings, *, backend: Backend | None = None) -> Pipeline:
    embedder = build_embedder(settings)
    index = build_index(settings, embedder)
    return Pipeline(settings, search=index, fetcher=index, backend=backend or create_backend(settings), embedder=embedder)
