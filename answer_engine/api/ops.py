"""For operators: GET /health and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from answer_engine import __version__

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(request: Request) -> dict[str, str | None]:
    return {"status": "ok", "version": __version__, "artifact": request.app.state.artifact}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics: requests, errors by stage, stage latencies, decode speed, queue depth, cache."""
    return PlainTextResponse(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
