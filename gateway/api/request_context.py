"""The outermost middleware of the gateway's own: every response carries X-Request-ID (the caller's when it is a sane
token, else a new one), the id is in every log line written while the request is served, each request is one access
log line and one count in the Prometheus metrics by route template and status (401/403/413/429 included). Each request
is timed by phase (gateway.timing): a `Server-Timing` header (total, triton, fetch, database, receive, hashing,
gateway, overhead in ms, up to the response's start) and the imgsel_request_phase_seconds histogram."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.access import KEY_ID_SCOPE_KEY, header
from gateway.logs import request_id_var
from gateway.metrics import LATENCY, PHASE_LATENCY, REQUESTS
from gateway.timing import RECEIVE, PhaseTimes, end_request, phase, start_request

access_log = logging.getLogger("imgsel.access")
log = logging.getLogger("imgsel.gateway")

# What a caller's id may look like to be echoed and logged: no spaces, quotes or control characters, bounded length.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def request_id(raw: bytes | None) -> str:
    text = raw.decode("latin-1") if raw is not None else ""
    return text if SANE_REQUEST_ID.fullmatch(text) else uuid.uuid4().hex


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route's path template (bounded label values), also for requests answered before routing (401, 413...)."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if hasattr(r, "path") and r.matches(scope)[0] is not Match.NONE), None)
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]):
        self.app = app
        self.routes = routes  # every route, flat (FastAPI nests included routers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = request_id(header(scope, b"x-request-id"))
        token = request_id_var.set(rid)
        timer, timer_token = start_request()
        started = time.perf_counter()
        status = None
        body_read = False

        async def receive_timed() -> Message:
            # Waiting for the request body counts as `receive` until its last chunk; later receives (a disconnect
            # listener) do not.
            nonlocal body_read
            if body_read:
                return await receive()
            with phase(RECEIVE):
                message = await receive()
            body_read = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        times: PhaseTimes | None = None  # taken when the response starts: what the header says is what is counted

        async def send_with_id(message: Message) -> None:
            nonlocal status, times
            if message["type"] == "http.response.start":
                status = message["status"]
                times = timer.snapshot()
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                message["headers"] = [
                    *kept,
                    (b"x-request-id", rid.encode()),
                    (b"server-timing", times.server_timing().encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive_timed, send_with_id)
        except Exception:
            if status is None:  # Starlette's own 500 would go out without the id; send ours, then re-raise
                log.exception("unhandled error")
                await JSONResponse({"detail": "internal server error", "request_id": rid}, 500)(
                    scope, receive_timed, send_with_id
                )
            raise
        finally:
            self.record(scope, status or 500, time.perf_counter() - started, times or timer.snapshot())
            end_request(timer_token)
            request_id_var.reset(token)

    def record(self, scope: Scope, status: int, elapsed_s: float, times: PhaseTimes) -> None:
        route = route_template(self.routes, scope)
        REQUESTS.labels(route=route, code=str(status)).inc()
        LATENCY.labels(route=route).observe(elapsed_s)
        for name, seconds in [*times.phases.items(), ("gateway", times.gateway), ("overhead", times.overhead)]:
            PHASE_LATENCY.labels(route=route, phase=name).observe(seconds)
        client = scope.get("client")
        access_log.info(
            "%s %s %s",
            scope.get("method"),
            route,
            status,
            extra={
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "duration_ms": round(elapsed_s * 1000, 1),
                "key_id": scope.get(KEY_ID_SCOPE_KEY),
                "client": client[0] if client else None,
            },
        )
