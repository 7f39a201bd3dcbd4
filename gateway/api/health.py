"""Probes and metrics: GET /healthz (process alive), /readyz (Triton, every required model and the state store
ready, or why not), /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contract.tensors import EMBEDDING, REQUIRED_MODELS, SEARCH_EMBEDDING
from gateway.api.deps import DatabaseDep, SettingsDep, TritonDep
from gateway.api.json_body import JsonRoute
from gateway.api.openapi import RETRY_AFTER
from gateway.clients.breaker import State, Status
from gateway.clients.database import StoreUnavailable
from gateway.clients.triton import HASH_NAMES, TritonUnavailable
from gateway.schemas import NotReady, Ready

router = APIRouter(route_class=JsonRoute)


@router.get("/healthz")
async def healthz():
    return {"status": "alive"}


def unreachable_reason(status: Status, error: TritonUnavailable, now: datetime) -> dict:
    """Why Triton cannot be used: since when (the breaker's outage start) and the last error."""
    if status.state is State.CLOSED:
        return {"reason": f"triton unreachable: {error}"}
    since = now - timedelta(seconds=status.down_for_s)
    return {
        "reason": f"triton unreachable since {since:%Y-%m-%dT%H:%M:%SZ} ({status.down_for_s:.0f} s)",
        "last_error": status.last_error,
    }


def models_reason(states: dict[str, str]) -> str | None:
    """None when every required model is present and every model READY; otherwise which and their state."""
    missing = [m for m in REQUIRED_MODELS if m not in states]
    not_ready = [f"{name} {state}" for name, state in sorted(states.items()) if state != "READY"]
    problems = []
    if not_ready:
        problems.append(f"not ready: {', '.join(not_ready)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    return "models " + "; ".join(problems) if problems else None


NOT_READY = {503: {"model": NotReady, "description": "not ready: why, and when to ask again", "headers": RETRY_AFTER}}


@router.get("/readyz", response_model=Ready, responses=NOT_READY)
async def readyz(triton: TritonDep, database: DatabaseDep, settings: SettingsDep):
    retry = {"Retry-After": str(settings.retry_after_s)}
    try:
        await database.check()
    except StoreUnavailable as error:
        return JSONResponse(status_code=503, content={"ready": False, "reason": f"state store: {error}"}, headers=retry)
    try:
        states = await triton.model_states()
    except TritonUnavailable as error:
        content = {"ready": False, **unreachable_reason(triton.breaker.status(), error, datetime.now(UTC))}
        return JSONResponse(status_code=503, content=content, headers=retry)
    reason = models_reason(states)
    if reason is not None:
        content = {"ready": False, "reason": reason, "models": states}
        return JSONResponse(status_code=503, content=content, headers=retry)
    try:
        heads = [name for name in await triton.head_outputs() if name not in HASH_NAMES]  # hashes are no head
    except TritonUnavailable as error:
        content = {"ready": False, **unreachable_reason(triton.breaker.status(), error, datetime.now(UTC))}
        return JSONResponse(status_code=503, content=content, headers=retry)
    vector = SEARCH_EMBEDDING.name if SEARCH_EMBEDDING.name in heads else EMBEDDING.name  # decisions.search_vector
    content = {"ready": True, "models": states, "heads": heads, "search_vector": vector}
    return JSONResponse(status_code=200, content=content)


@router.get("/metrics", response_class=PlainTextResponse)  # Prometheus text exposition, not JSON
async def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
