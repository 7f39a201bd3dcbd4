"""Per-caller token buckets (IMGSEL_RATE_LIMIT_PER_S refill, IMGSEL_RATE_LIMIT_BURST capacity). The caller passes the
time, so tests drive a fake clock; the HTTP side (429 with Retry-After) is gateway.api.access."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

# Buckets kept at most (one per key id; a keys file may be large and reloaded): memory stays bounded whatever the
# callers are. The least recently used bucket goes first; its key starts again full.
MAX_BUCKETS = 10_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`take(caller, now)` spends one token of the caller's bucket: 0.0 when allowed, else the seconds until one
    token is back. A rate of 0 disables the limit."""

    def __init__(self, per_s: float, burst: int, max_buckets: int = MAX_BUCKETS):
        if per_s < 0:
            raise ValueError(f"IMGSEL_RATE_LIMIT_PER_S={per_s}: must be 0 (off) or positive")
        if per_s > 0 and burst < 1:
            raise ValueError(f"IMGSEL_RATE_LIMIT_BURST={burst}: must be at least 1 when the rate limit is on")
        self.per_s = per_s
        self.burst = float(burst)
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_s > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, caller: str, now: float) -> float:
        if not self.enabled:
            return 0.0
        bucket = self._buckets.pop(caller, None) or Bucket(self.burst, now)
        self._buckets[caller] = bucket  # most recently used last
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        elapsed = max(0.0, now - bucket.updated)  # a clock that steps back never mints tokens
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_s


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds (RFC 9110); round up so a caller that waits it gets a token."""
    return str(max(1, math.ceil(wait_s)))
