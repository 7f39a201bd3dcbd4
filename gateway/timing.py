"""Where a request's time goes: how long it waited on Triton, on image fetching and on the state store, and the rest,
the gateway's own work ("gateway overhead").

The outermost middleware (gateway.api.request_context) starts one RequestTimer per request and makes it current; the
one place each kind of outside call goes through wraps it in `with phase(name):` (Triton: TritonAnalyzer._guarded;
fetch: Fetcher.fetch_all; database: Database._connection, under statement() and transaction(); receive: the
middleware's receive wrapper, until the request body is complete: the client's upload, with the per-chunk reading).
The timer lives in a ContextVar, so concurrent requests never mix; tasks a request starts (asyncio.gather, wait_for)
copy the context and so add to the same timer, except those started in `detached_context()` (work the request does
not wait for).

A phase is wall time the request spent with at least one call of that kind in flight: parallel or nested calls are
counted once (a depth counter per phase; the clock runs from depth 0->1 to 1->0). `gateway` is the total less the
time any phase was in flight, so overlapping phases of different kinds are not subtracted twice either. `overhead`
is the total less the time Triton or a fetch was in flight (issue #13's "gateway overhead": the gateway's own work
plus the state store's time that no model call or fetch hides; a store read running beside the Triton call costs
the request nothing). A phase of GATEWAY_WORK (the thumbnails' hashes; the pure decisions, de-duplication and
selection, gateway.services.curation.decide) is the gateway's own work: reported on its own, and part of `overhead`
(and of `gateway` where no outside call runs at the same time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import Context, ContextVar, Token, copy_context
from dataclasses import dataclass

TRITON, FETCH, DATABASE, RECEIVE = "triton", "fetch", "database", "receive"
HASHING, DECISIONS = "hashing", "decisions"
PHASES = (TRITON, FETCH, DATABASE, RECEIVE)
GATEWAY_WORK = (HASHING, DECISIONS)  # shown apart, not subtracted from `gateway`
_ANY = "*"  # every phase together: the time the request waited on anything outside the gateway
_UPSTREAM = "upstream"  # Triton or a fetch in flight: what the request cannot do without
UPSTREAM = (TRITON, FETCH)


@dataclass(frozen=True)
class PhaseTimes:
    """Seconds of one request: its total, each phase, and the gateway's own share."""

    total: float
    phases: dict[str, float]  # every name of PHASES and GATEWAY_WORK (0 when not entered) and any other name used
    gateway: float  # outside every phase
    overhead: float  # outside Triton and fetching

    def server_timing(self) -> str:
        """The Server-Timing header value, in milliseconds: total, each phase, gateway, overhead."""
        parts = [("total", self.total), *self.phases.items(), ("gateway", self.gateway), ("overhead", self.overhead)]
        return ", ".join(f"{name};dur={1000 * seconds:.2f}" for name, seconds in parts)


class RequestTimer:
    """Phase durations of one request (one mutable object shared by every task of the request)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.started = clock()
        self._spent: dict[str, float] = {}
        self._depth: dict[str, int] = {}
        self._since: dict[str, float] = {}

    def _keys(self, name: str) -> tuple[str, ...]:
        if name in GATEWAY_WORK:
            return (name,)
        return (name, _ANY, _UPSTREAM) if name in UPSTREAM else (name, _ANY)

    def enter(self, name: str) -> None:
        now = self.clock()
        for key in self._keys(name):
            depth = self._depth.get(key, 0)
            if depth == 0:
                self._since[key] = now
            self._depth[key] = depth + 1

    def leave(self, name: str) -> None:
        now = self.clock()
        for key in self._keys(name):
            depth = self._depth[key] - 1
            self._depth[key] = depth
            if depth == 0:
                self._spent[key] = self._spent.get(key, 0.0) + now - self._since.pop(key)

    def spent(self, key: str, now: float) -> float:
        """Seconds in `key` so far, an interval still open counted up to `now`."""
        open_for = now - self._since[key] if self._depth.get(key, 0) > 0 else 0.0
        return self._spent.get(key, 0.0) + open_for

    def snapshot(self) -> PhaseTimes:
        now = self.clock()
        total = now - self.started
        known = PHASES + GATEWAY_WORK
        names = list(known) + [name for name in self._depth if name not in known and name not in (_ANY, _UPSTREAM)]
        phases = {name: self.spent(name, now) for name in names}
        return PhaseTimes(
            total,
            phases,
            gateway=max(0.0, total - self.spent(_ANY, now)),
            overhead=max(0.0, total - self.spent(_UPSTREAM, now)),
        )


_current: ContextVar[RequestTimer | None] = ContextVar("imgsel_request_timer", default=None)


def start_request(clock: Callable[[], float] = time.perf_counter) -> tuple[RequestTimer, Token]:
    """A new timer, current for this context (and the tasks it starts) until `end_request(token)`."""
    timer = RequestTimer(clock)
    return timer, _current.set(timer)


def end_request(token: Token) -> None:
    _current.reset(token)


def detached_context() -> Context:
    """A copy of the current context without the request's timer: work a request starts but does not wait for (a
    task run in it) keeps the request id of the log lines and never counts in the request's phases."""
    context = copy_context()
    context.run(_current.set, None)
    return context


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Counts the block's wall time to phase `name` of the current request; a no-op outside a request (start-up,
    background work). Works around `await`s: the block's time is wall time, whatever else the loop runs meanwhile."""
    timer = _current.get()
    if timer is None:
        yield
        return
    timer.enter(name)
    try:
        yield
    finally:
        timer.leave(name)
