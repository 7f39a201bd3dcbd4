"""Circuit breaker for the inference server: after a failure, refuse at once for a cooldown, then let one probe call
through; its success closes the breaker, its failure opens it for another cooldown.

Pure state machine over an injectable monotonic clock (no I/O, no asyncio): the Triton client asks `allow()` before
each call and reports the outcome. Callers do not wait out the gRPC timeout while the server is known to be down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class State(Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls refused until the cooldown ends
    HALF_OPEN = "half_open"  # one probe call in flight; others refused


@dataclass(frozen=True)
class Status:
    state: State
    down_for_s: float  # since the first failure of this outage; 0 when closed
    retry_in_s: float  # until the next probe may go; 0 when closed or a probe is allowed now
    last_error: str


class CircuitBreaker:
    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = State.CLOSED
        self.opened_at = 0.0  # last time it opened (cooldown start)
        self.down_since = 0.0  # first failure of this outage
        self.last_error = ""

    def allow(self) -> bool:
        """May a call go out now? Past the cooldown the first caller becomes the probe (half-open)."""
        if self.state is State.CLOSED:
            return True
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self.state = State.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        self.state = State.CLOSED
        self.last_error = ""

    def record_failure(self, error: str) -> None:
        now = self.clock()
        if self.state is State.CLOSED:
            self.down_since = now
        self.state = State.OPEN
        self.opened_at = now
        self.last_error = error

    def record_abandoned(self) -> None:
        """A call that ended with no verdict on the server (cancelled): a probe's slot is freed, nothing else."""
        if self.state is State.HALF_OPEN:
            self.state = State.OPEN  # cooldown already over: the next call probes

    def status(self) -> Status:
        if self.state is State.CLOSED:
            return Status(State.CLOSED, 0.0, 0.0, "")
        now = self.clock()
        retry_in = 0.0 if self.state is State.HALF_OPEN else max(0.0, self.cooldown_s - (now - self.opened_at))
        return Status(self.state, now - self.down_since, retry_in, self.last_error)
