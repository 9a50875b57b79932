"""POST /admin/reload: what ``engine-build promote/rollback`` calls to swap the served model."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from answer_engine.api.access import bearer_token, key_allowed
from answer_engine.api.errors import APIError
from answer_engine.backends.base import Backend, GenerationParams
from answer_engine.config import Settings
from answer_engine.request import ChatMessage

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


async def warm_up(backend: Backend) -> None:
    """One short generation, so the first user of a new backend does not pay for its first load."""
    async with contextlib.aclosing(
        backend.stream(
            [ChatMessage(role="user", content="Say OK.")],  # type: ignore[type-var]
            GenerationParams(max_tokens=2),
        )
    ) as stream:
        async for _ in stream:
            pass


def _target(settings: Settings, body: Any) -> Path:
    """The artifact to load: the one named, else the root's ``current``; only under the root."""
    target = body.get("artifact") if isinstance(body, dict) else None
    if not target:
        if not settings.generation.artifacts_root:
            raise APIError(400, "name an artifact, or set generation.artifacts_root", param="artifact")
        target = str(Path(settings.generation.artifacts_root) / "current")
    resolved = Path(target).resolve()
    if settings.generation.artifacts_root:
        allowed = (Path(settings.generation.artifacts_root) / "artifacts").resolve()
        if not resolved.is_relative_to(allowed):
            raise APIError(400, f"artifacts are loaded only from {allowed}", param="artifact")
    return resolved


@router.post("/admin/reload")
async def reload(request: Request) -> dict[str, Any]:
    """Load the artifact engine-build promoted (or the one named), warm it, and swap it in for new
    answers; answers already streaming finish on the old backend. Admin key required."""
    state = request.app.state
    settings: Settings = state.settings
    hashes = settings.server.admin_key_hashes
    if not hashes:
        raise APIError(404, "the admin API is off (set server.admin_key_hashes)", code="not_found")
    if not key_allowed(bearer_token(request.headers.get("authorization")), hashes):
        raise APIError(401, "admin key required", code="invalid_api_key")
    try:
        body = await request.json() if await request.body() else {}
    except ValueError as exc:
        raise APIError(400, 'body must be JSON: {"artifact": path}') from exc
    resolved = _target(settings, body)
    from answer_engine.backends import backend_for_artifact
    from answer_engine.prompt import answer_prefix

    async with state.reload_lock:  # one reload at a time
        new = None
        try:
            new = backend_for_artifact(resolved, settings)
            await new.start()
            await warm_up(new)
            await new.warm_prefix(answer_prefix())
        except Exception as exc:
            log.exception("reload failed; still serving the previous backend")
            if new is not None:
                await new.aclose()  # free what the half-loaded backend holds
            raise APIError(
                500,
                f"could not load {resolved}: {type(exc).__name__}: {exc}; still serving the previous backend",
                code="reload_failed",
            ) from exc
        state.pipeline.backends.swap(new)
        state.artifact = str(resolved)
    log.info("reloaded: now serving %s", state.artifact)
    return {"artifact": state.artifact, "backend": new.info()}
