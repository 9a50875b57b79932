"""The FastAPI service: POST /api/ask (named SSE events), the OpenAI/Perplexity-compatible
/v1/chat/completions and /v1/models, GET /health, and the web UI at /."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from answer_engine import __version__, logs
from answer_engine.api import errors, openai_compat
from answer_engine.api.errors import ERROR_RESPONSES, SSE_EVENT_SCHEMA, APIError, error_response
from answer_engine.api.access import PROTECTED_PREFIXES, LocalBucket, RedisBucket, hash_key, key_allowed
from answer_engine.api.limits import Backpressure
from answer_engine.api.drain import until_shutdown
from answer_engine.api.metrics import Metrics
from answer_engine.config import Settings, load_settings
from answer_engine.events import ErrorEvent, sse_frame
from answer_engine.pipeline import AskRequest, Pipeline, RequestError

log = logging.getLogger(__name__)
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a caller's id is kept only if it is this tame


def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]


async def warm_up(backend: Any) -> None:
    """One short generation, so the first user of a new backend does not pay for its first load."""
    from answer_engine.backends.base import ChatMessage, GenerationParams

    async with contextlib.aclosing(backend.stream([ChatMessage(role="user", content="Say OK.")],
                                                  GenerationParams(max_tokens=2))) as stream:
        async for _ in stream:
            pass


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
        if settings.generation.artifacts_root and (Path(settings.generation.artifacts_root) / "current").exists():
            app.state.artifact = str((Path(settings.generation.artifacts_root) / "current").resolve())
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
        aclose = getattr(app.state.pipeline, "aclose", None)
        if aclose is not None:
            await aclose()

    app = FastAPI(
        title="answer-engine",
        version=__version__,
        summary="Answers with citations that point at sources it really read.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.reload_lock = asyncio.Lock()
    app.state.artifact = None
    app.state.backpressure = Backpressure(settings.server.max_in_flight, settings.server.retry_after_s)
    app.state.metrics = Metrics(app.state)
    if pipeline is not None:
        app.state.pipeline = pipeline
    errors.install(app)

    limiter = None
    if settings.server.rate_limit_per_min:
        if settings.redis_url:
            limiter = RedisBucket(settings.redis_url, settings.server.rate_limit_per_min, settings.server.rate_limit_burst)
        else:
            limiter = LocalBucket(settings.server.rate_limit_per_min, settings.server.rate_limit_burst)
    app.state.limiter = limiter

    @app.middleware("http")
    async def access(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """API keys and rate limits on /api and /v1 (not /health, /metrics or the UI's files)."""
        if not request.url.path.startswith(PROTECTED_PREFIXES):
            return await call_next(request)
        who = f"ip:{request.client.host if request.client else '-'}"
        hashes = settings.server.api_key_hashes
        if hashes:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            presented = presented.strip()
            if scheme.lower() != "bearer" or not presented:
                return error_response(401, "missing API key: send Authorization: Bearer <key>", code="invalid_api_key",
                                      headers={"WWW-Authenticate": "Bearer"})
            if not key_allowed(presented, hashes):
                return error_response(401, "incorrect API key", code="invalid_api_key",
                                      headers={"WWW-Authenticate": "Bearer"})
            who = "key:" + hash_key(presented)[:16]
        if limiter is None:
            return await call_next(request)
        decision = await limiter.take(who)
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if not decision.allowed:
            return error_response(429, f"rate limit reached; retry in {decision.retry_after_s} s", code="rate_limit_exceeded",
                                  headers={**headers, "Retry-After": str(decision.retry_after_s)})
        response = await call_next(request)
        response.headers.update(headers)
        return response

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Refuse bodies over the limit before reading them (Content-Length) or while reading them."""
        limit = settings.server.max_body_bytes
        too_large = f"request body is larger than {limit} bytes"
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error_response(400, "invalid Content-Length header")
            if int(length) > limit:
                return error_response(413, too_large, code="request_too_large")
        elif request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for part in request.stream():
                body += part
                if len(body) > limit:
                    return error_response(413, too_large, code="request_too_large")
            request._body = body  # already read: let the route see it
        return await call_next(request)

    @app.middleware("http")
    async def with_request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every response names its request, and every log line written for it carries the same id."""
        given = request.headers.get("x-request-id", "")
        rid = given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        try:
            response = await call_next(request)
        finally:
            logs.request_id.reset(token)
        response.headers["X-Request-ID"] = rid
        route = request.scope.get("route")
        app.state.metrics.requests.labels(getattr(route, "path", "other"), str(response.status_code)).inc()
        return response

    @app.get("/health")
    async def health() -> dict[str, str | None]:
        return {"status": "ok", "version": __version__, "artifact": app.state.artifact}

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}})
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics: requests, errors by stage, stage latencies, decode speed, queue depth, cache."""
        return PlainTextResponse(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/api/ask",
        response_class=EventSourceResponse,
        responses={
            **ERROR_RESPONSES,
            200: {"content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
                  "description": "Pipeline events as named SSE frames: status*, sources, delta*, citations, related, done | error."},
        },
    )
    async def ask(body: AskRequest, pipe: PipelineDep, request: Request) -> EventSourceResponse:
        """Stream the answer as Server-Sent Events; every frame's name is its event type."""
        try:
            body = pipe.validate(body)
        except RequestError as exc:
            raise APIError(400, str(exc), param="query", code="invalid_value") from exc
        slot = request.app.state.backpressure.acquire()  # 503 + Retry-After when full, before anything streams

        async def frames() -> AsyncIterator[dict[str, str]]:
            try:
                grace = settings.server.shutdown_grace_s
                async with contextlib.aclosing(request.app.state.metrics.observe(until_shutdown(pipe.run(body), grace))) as events:
                    async for event in events:
                        yield sse_frame(event)
            except Exception as exc:  # never a dropped stream: the client gets an error event
                log.exception("pipeline crashed")
                yield sse_frame(ErrorEvent(stage="internal", message=f"internal error: {type(exc).__name__}"))
            finally:
                slot.release()

        return EventSourceResponse(frames(), ping=15, background=BackgroundTask(slot.release),
                                   shutdown_grace_period=settings.server.shutdown_grace_s + 2)

    @app.post("/admin/reload", include_in_schema=False)
    async def reload(request: Request) -> dict[str, Any]:
        """Load the artifact engine-build promoted (or the one named), warm it, and swap it in for new
        answers; answers already streaming finish on the old backend. Admin key required."""
        hashes = settings.server.admin_key_hashes
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if not hashes:
            raise APIError(404, "the admin API is off (set server.admin_key_hashes)", code="not_found")
        if scheme.lower() != "bearer" or not key_allowed(presented.strip(), hashes):
            raise APIError(401, "admin key required", code="invalid_api_key")
        try:
            body = await request.json() if await request.body() else {}
        except ValueError as exc:
            raise APIError(400, "body must be JSON: {\"artifact\": path}") from exc
        target = body.get("artifact") if isinstance(body, dict) else None
        if not target:
            if not settings.generation.artifacts_root:
                raise APIError(400, "name an artifact, or set generation.artifacts_root", param="artifact")
            target = str(Path(settings.generation.artifacts_root) / "current")
        from answer_engine.backends import backend_for_artifact

        resolved = Path(target).resolve()
        if settings.generation.artifacts_root:
            allowed = (Path(settings.generation.artifacts_root) / "artifacts").resolve()
            if not resolved.is_relative_to(allowed):
                raise APIError(400, f"artifacts are loaded only from {allowed}", param="artifact")
        async with request.app.state.reload_lock:  # one reload at a time
            new = None
            try:
                new = backend_for_artifact(resolved, settings)
                start = getattr(new, "start", None)
                if start is not None:
                    await start()
                await warm_up(new)
            except Exception as exc:
                log.exception("reload failed; still serving the previous backend")
                close = getattr(new, "close", None)
                if close is not None:
                    close()  # free what the half-loaded backend holds
                raise APIError(500, f"could not load {target}: {type(exc).__name__}: {exc}; "
                               "still serving the previous backend", code="reload_failed") from exc
            request.app.state.pipeline.swap_backend(new)
            request.app.state.artifact = str(resolved)
        log.info("reloaded: now serving %s", request.app.state.artifact)
        return {"artifact": request.app.state.artifact, "backend": new.info()}

    app.include_router(openai_compat.router)

    if settings.server.web_dir.is_dir():
        app.mount("/", StaticFiles(directory=settings.server.web_dir, html=True), name="web")
    return app
