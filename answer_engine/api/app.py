"""The FastAPI service, assembled from its routers: the native SSE API (``native``), the
OpenAI/Perplexity-compatible API (``openai_compat``, ``responses``: /v1/responses), Perplexity's
Search API (``search_api``: /search), the document library (``documents``: /v1/documents),
operations (``ops``: /health, /metrics), the admin API (``admin``: /admin/reload), and the web UI at /."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from answer_engine import __version__
from answer_engine.api import (
    admin,
    documents,
    errors,
    middleware,
    native,
    openai_compat,
    ops,
    responses,
    search_api,
)
from answer_engine.api.limits import Backpressure
from answer_engine.api.metrics import Metrics
from answer_engine.config import Settings, load_settings
from answer_engine.pipeline import Pipeline


def create_app(settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app. Settings are read here, not at import; tests pass their own pipeline."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pipeline is None:
            from answer_engine.components import build_pipeline

            app.state.pipeline = build_pipeline(settings)
        current = (
            Path(settings.generation.artifacts_root) / "current"
            if settings.generation.artifacts_root
            else None
        )
        if current is not None and current.exists():
            app.state.artifact = str(current.resolve())
        await app.state.pipeline.start()  # the index and the model, so the first question doesn't wait
        yield
        await app.state.pipeline.backend.aclose()
        await app.state.pipeline.aclose()

    app = FastAPI(
        title="answer-engine",
        version=__version__,
        summary="Answers with citations that point at sources it really read.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.reload_lock = asyncio.Lock()
    app.state.artifact = None
    app.state.backpressure = Backpressure(settings.server.max_in_flight, settings.server.retry_after_s)
    app.state.metrics = Metrics(app.state.backpressure, lambda: app.state.pipeline)
    errors.install(app)
    middleware.install(app, settings)
    for router in (
        ops.router,
        native.router,
        admin.router,
        openai_compat.router,
        responses.router,
        search_api.router,
        documents.router,
    ):
        app.include_router(router)
    if settings.server.web_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.server.web_dir, html=True), name="web")
    return app
