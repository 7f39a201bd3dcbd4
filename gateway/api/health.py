"""Probes and metrics: GET /healthz (process alive), /readyz (Triton and every required model ready), /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contract.tensors import REQUIRED_MODELS
from gateway.api.deps import SettingsDep, TritonDep
from gateway.clients.triton import TritonUnavailable

router = APIRouter()


@router.get("/healthz")
async def healthz():
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(triton: TritonDep, settings: SettingsDep):
    try:
        states = await triton.model_states()
    except TritonUnavailable as error:
        return JSONResponse(
            status_code=503,
            content={"ready": False, "detail": str(error)},
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    missing = [m for m in REQUIRED_MODELS if m not in states]
    not_ready = {name: state for name, state in states.items() if state != "READY"}
    ready = not missing and not not_ready
    return JSONResponse(
        status_code=200 if ready else 503, content={"ready": ready, "models": states, "missing": missing}
    )


@router.get("/metrics")
async def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
