"""Exception handlers: Triton unavailable (503 with Retry-After), too many images (413 naming the limit and the
field), invalid fields and request validation (422 with a message naming each field plus FastAPI's detail list)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.api.limits import TooManyImages
from gateway.clients.triton import TritonUnavailable
from gateway.metrics import TRITON_UNAVAILABLE
from gateway.services.errors import InvalidField

log = logging.getLogger("imgsel.gateway")


def jsonable_errors(error: RequestValidationError) -> list[dict]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    @app.exception_handler(TritonUnavailable)
    async def triton_unavailable(_request: Request, error: TritonUnavailable):
        TRITON_UNAVAILABLE.inc()
        log.warning("503: %s", error)
        return JSONResponse(
            status_code=503,
            content={"detail": f"inference server unavailable: {error}"},
            headers={"Retry-After": str(retry_after_s)},
        )

    @app.exception_handler(TooManyImages)
    async def too_many_images(_request: Request, error: TooManyImages):
        content = {"message": str(error), "limit": error.limit, "field": error.field}
        return JSONResponse(status_code=413, content=content)

    @app.exception_handler(InvalidField)
    async def invalid_field(_request: Request, error: InvalidField):
        loc = ["body", *(int(p) if p.isdigit() else p for p in error.field.split("."))]
        return JSONResponse(
            status_code=422, content={"message": str(error), "detail": [{"loc": loc, "msg": str(error)}]}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        # FastAPI's detail list, plus one sentence naming each offending field.
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in error.errors()]
        return JSONResponse(status_code=422, content={"message": "; ".join(problems), "detail": jsonable_errors(error)})
