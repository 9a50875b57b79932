"""The FastAPI service: POST /api/ask (Server-Sent Events), GET /health, and the web UI at /."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse

from answer_engine import __version__
from answer_engine.config import Settings, load_settings
from answer_engine.events import ErrorEvent, sse_frame
from answer_engine.pipeline import AskRequest, Pipeline, RequestError

log = logging.getLogger(__name__)


def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]


def create_app(settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app. Settings are read here, not at import; tests pass their own pipeline."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pipeline is None:
            from answer_engine.components import build_pipeline

            app.state.pipeline = build_pipeline(settings)
        else:
            app.state.pipeline = pipeline
        # Load the index and the model now, so the first question doesn't pay for it.
        index_ensure = getattr(app.state.pipeline.search, "ensure", None)
        if index_ensure is not None:
            await asyncio.to_thread(index_ensure)
        start = getattr(app.state.pipeline.backend, "start", None)
        if start is not None:
            await start()
        yield
        close = getattr(app.state.pipeline.backend, "close", None)
        if close is not None:
            close()

    app = FastAPI(title="answer-engine", version=__version__, lifespan=lifespan)
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(
            status_code=422,
            content={"error": {"message": f"{where}: {first.get('msg', 'invalid request')}", "type": "invalid_request"}},
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post(
        "/api/ask",
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Pipeline events as named SSE frames."}},
    )
    async def ask(body: AskRequest, pipe: PipelineDep) -> EventSourceResponse:
        """Stream the answer as Server-Sent Events: status*, sources, delta*, citations, related, done | error."""
        try:
            body = pipe.validate(body)
        except RequestError as exc:
            return JSONResponse(status_code=400, content={"error": {"message": str(exc), "type": "invalid_request"}})  # type: ignore[return-value]

        async def frames() -> AsyncIterator[dict[str, str]]:
            try:
                async with contextlib.aclosing(pipe.run(body)) as events:
                    async for event in events:
                        yield sse_frame(event)
            except Exception as exc:  # never a dropped stream: the client gets an error event
                log.exception("pipeline crashed")
                yield sse_frame(ErrorEvent(stage="internal", message=f"internal error: {type(exc).__name__}"))

        return EventSourceResponse(frames(), ping=15)

    if settings.server.web_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.server.web_dir, html=True), name="web")
    return app
