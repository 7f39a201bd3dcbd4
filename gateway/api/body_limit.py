"""IMGSEL_MAX_BODY_BYTES: a pure ASGI middleware that answers 413 before a body is parsed. A Content-Length over the
limit is refused before a byte is read; a body of unknown length (chunked) is counted as it arrives and refused as
soon as the count passes the limit, so no more than one chunk past the limit is ever held."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.access import header


class BodyTooLarge(Exception):
    """Raised into the app from `receive` when the count passes the limit; the app's reaction is replaced by 413."""


def content_length(scope: Scope) -> int | None:
    raw = header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None  # the server rejects a malformed length; counting still applies


def too_large(limit: int) -> JSONResponse:
    body = {"message": f"request body over {limit} bytes (IMGSEL_MAX_BODY_BYTES)", "limit": limit}
    # The rest of the body is never read, so the connection cannot carry another request.
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = content_length(scope)
        if length is not None and length > self.max_bytes:
            return await too_large(self.max_bytes)(scope, receive, send)

        received = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(f"request body over {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body cut short (400, 422, 500) gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await too_large(self.max_bytes)(scope, receive, send)
