"""Wire the configured parts into a pipeline: the one place configuration picks implementations."""

from __future__ import annotations

from answer_engine.backends import create_backend
from answer_engine.backends.base import Backend
from answer_engine.config import Settings
from answer_engine.pipeline import Pipeline
from search_adapters.local import LocalIndex


def build_pipeline(settings: Settings, *, backend: Backend | None = None) -> Pipeline:
    index = LocalIndex(settings.data_dir, include_default_corpus=settings.search.include_default_corpus)
    return Pipeline(settings, search=index, fetcher=index, backend=backend or create_backend(settings))
