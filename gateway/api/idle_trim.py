"""Counts the requests in flight for the idle memory trim (runtime.idle_memory): the gateway hands the heap its
request bodies and decoded images left behind back to the operating system in a pause of the traffic, not while
serving (a 16-client burst left ~275 MB resident that nothing used; BENCHMARKS.md, issue #13)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.idle_memory import IdleTrim


class IdleTrimMiddleware:
    def __init__(self, app: ASGIApp, trimmer: IdleTrim):
        self.app = app
        self.trimmer = trimmer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        with self.trimmer.busy():
            await self.app(scope, receive, send)
