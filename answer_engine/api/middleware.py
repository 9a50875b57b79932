"""The service's middleware: request ids, the body-size limit, API keys and rate limits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from answer_engine import logs
from answer_engine.api.access import (
    PROTECTED_PREFIXES,
    LocalBucket,
    RedisBucket,
    bearer_token,
    hash_key,
    key_allowed,
)
from answer_engine.api.errors import error_response
from answer_engine.config import Settings

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a caller's id is kept only if it is this tame
Next = Callable[[Request], Awaitable[Response]]


def rate_limiter(settings: Settings) -> LocalBucket | RedisBucket | None:
    s = settings.server
    if not s.rate_limit_per_min:
        return None
    if settings.redis_url:
        return RedisBucket(settings.redis_url, s.rate_limit_per_min, s.rate_limit_burst)
    return LocalBucket(s.rate_limit_per_min, s.rate_limit_burst)


def install(app: FastAPI, settings: Settings) -> None:
    limiter = rate_limiter(settings)
    app.state.limiter = limiter

    @app.middleware("http")
    async def access(request: Request, call_next: Next) -> Response:
        """API keys and rate limits on /api and /v1 (not /health, /metrics or the UI's files)."""
        if not request.url.path.startswith(PROTECTED_PREFIXES):
            return await call_next(request)
        who = f"ip:{request.client.host if request.client else '-'}"
        hashes = settings.server.api_key_hashes
        if hashes:
            presented = bearer_token(request.headers.get("authorization"))
            if not presented:
                return error_response(
                    401,
                    "missing API key: send Authorization: Bearer <key>",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not key_allowed(presented, hashes):
                return error_response(
                    401, "incorrect API key", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
                )
            who = "key:" + hash_key(presented)[:16]
        if limiter is None:
            return await call_next(request)
        decision = await limiter.take(who)
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if not decision.allowed:
            return error_response(
                429,
                f"rate limit reached; retry in {decision.retry_after_s} s",
                code="rate_limit_exceeded",
                headers={**headers, "Retry-After": str(decision.retry_after_s)},
            )
        response = await call_next(request)
        response.headers.update(headers)
        return response

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Next) -> Response:
        """Refuse bodies over the limit before reading them (Content-Length) or while reading them."""
        uploading = request.url.path == "/v1/documents"
        limit = settings.server.max_upload_bytes if uploading else settings.server.max_body_bytes
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
    async def with_request_id(request: Request, call_next: Next) -> Response:
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
