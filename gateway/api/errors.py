"""Exception handlers: Triton or the state store unavailable (503 with Retry-After), too many images (413 naming the
limit and the field), invalid fields, request validation and a body that cannot be parsed as JSON (422 with a message
naming each field plus FastAPI's detail list)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway.api.limits import TooManyImages
from gateway.clients.database import StoreUnavailable
from gateway.clients.triton import TritonUnavailable
from gateway.metrics import STORE_UNAVAILABLE, TRITON_UNAVAILABLE
from gateway.services.errors import InvalidField

log = logging.getLogger("imgsel.gateway")


def jsonable_errors(error: RequestValidationError) -> list[dict]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]


def problem(error: dict) -> str:
    """One validation error as `field: message`; a body that is not JSON is `body` (its loc's number is a character
    offset, not a field)."""
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error")
        return f"body: {error['msg']}" + (f" ({reason})" if reason else "")
    field = ".".join(str(p) for p in error["loc"] if p != "body")
    return f"{field or 'body'}: {error['msg']}"


def unparsable_body(error: HTTPException) -> RequestValidationError | None:
    """FastAPI answers a JSON body it cannot decode other than by JSONDecodeError (bytes that are not UTF-8, nesting
    past the recursion limit) with a bare 400 raised from the cause; the contract's answer to a bad body is a 422."""
    if error.status_code != 400 or error.__cause__ is None:
        return None
    cause = error.__cause__
    reason = f"{type(cause).__name__}: {cause}"[:200]
    return RequestValidationError(
        [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}, "ctx": {"error": reason}}]
    )


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    # What is unavailable, and its counter, by exception: both answer 503 with Retry-After at once.
    unavailable = {
        TritonUnavailable: ("inference server", TRITON_UNAVAILABLE),
        StoreUnavailable: ("state store", STORE_UNAVAILABLE),
    }

    async def service_unavailable(_request: Request, error: Exception):
        what, counter = next(v for kind, v in unavailable.items() if isinstance(error, kind))
        counter.inc()
        log.warning("503: %s", error)
        return JSONResponse(
            status_code=503,
            content={"detail": f"{what} unavailable: {error}"},
            headers={"Retry-After": str(retry_after_s)},
        )

    for kind in unavailable:
        app.add_exception_handler(kind, service_unavailable)

    @app.exception_handler(TooManyImages)
    async def too_many_images(_request: Request, error: TooManyImages):
        content = {"message": str(error), "limit": error.limit, "field": error.field}
        return JSONResponse(status_code=413, content=content)

    @app.exception_handler(InvalidField)
    async def invalid_field(_request: Request, error: InvalidField):
        loc = ["body", *(int(p) if p.isdigit() else p for p in error.field.split("."))]
        detail = [{"loc": loc, "msg": str(error), "type": "value_error"}]  # `type`: the declared ValidationError's
        return JSONResponse(status_code=422, content={"message": str(error), "detail": detail})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        # FastAPI's detail list, plus one sentence naming each offending field.
        message = "; ".join(problem(e) for e in error.errors())
        return JSONResponse(status_code=422, content={"message": message, "detail": jsonable_errors(error)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        invalid = unparsable_body(error)
        if invalid is not None:
            return await invalid_request(request, invalid)
        return await http_exception_handler(request, error)
