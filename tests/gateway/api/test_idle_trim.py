"""The gateway's idle-trim middleware: a request in flight holds the trim off, a finished one makes it due after the
pause, and non-HTTP traffic (lifespan) does not count; the app wires one trimmer between its request context and its
access checks."""

from __future__ import annotations

import asyncio

from gateway.api.idle_trim import IdleTrimMiddleware
from runtime.idle_memory import IdleTrim


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_request_in_flight_holds_the_trim_off_and_a_finished_one_makes_it_due():
    clock, trims = Clock(), []
    trimmer = IdleTrim(idle_s=2.0, trim=lambda: trims.append(1), clock=clock)
    seen_during = []

    async def app(scope, receive, send):
        clock.now += 10  # a slow request: still no trim while it runs
        seen_during.append(trimmer.due())

    middleware = IdleTrimMiddleware(app, trimmer)
    asyncio.run(middleware({"type": "lifespan"}, None, None))
    assert not trimmer.due() and seen_during == [False]  # lifespan is not a request
    asyncio.run(middleware({"type": "http"}, None, None))
    assert seen_during == [False, False] and not trimmer.due()
    clock.now += 2
    assert trimmer.trim_if_due() and trims == [1]


def test_the_app_has_one_trimmer_between_its_request_context_and_its_access_checks():
    from gateway.app import create_app
    from gateway.settings import Settings

    app = create_app(Settings.from_env({}))
    assert isinstance(app.state.idle_trim, IdleTrim)
    order = [m.cls.__name__ for m in app.user_middleware]  # outermost first
    assert order[:3] == ["RequestContextMiddleware", "IdleTrimMiddleware", "AccessMiddleware"]
