"""Token buckets on a fake clock (gateway.decisions.rate_limit)."""

from __future__ import annotations

import pytest

from gateway.decisions.rate_limit import RateLimiter, retry_after_header


def test_burst_then_refill_at_the_rate():
    limiter = RateLimiter(per_s=2.0, burst=3)
    assert [limiter.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k", 0.0) == pytest.approx(0.5)  # one token back after 1/rate
    assert limiter.take("k", 0.25) == pytest.approx(0.25)  # a refused take spends nothing
    assert limiter.take("k", 0.5) == 0.0
    assert limiter.take("k", 0.5) == pytest.approx(0.5)


def test_tokens_never_exceed_the_burst():
    limiter = RateLimiter(per_s=10.0, burst=2)
    limiter.take("k", 0.0)
    results = [limiter.take("k", 100.0) for _ in range(3)]  # 100 s idle refills 2 tokens, not 1000
    assert results[:2] == [0.0, 0.0] and results[2] == pytest.approx(0.1)


def test_callers_have_their_own_buckets():
    limiter = RateLimiter(per_s=1.0, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_a_clock_stepping_back_mints_no_tokens():
    limiter = RateLimiter(per_s=1.0, burst=1)
    limiter.take("k", 10.0)
    assert limiter.take("k", 5.0) == pytest.approx(1.0)


def test_zero_rate_disables():
    limiter = RateLimiter(per_s=0.0, burst=0)
    assert not limiter.enabled
    assert all(limiter.take("k", 0.0) == 0.0 for _ in range(1000))
    assert len(limiter) == 0


def test_buckets_are_bounded_least_recently_used_first():
    limiter = RateLimiter(per_s=1.0, burst=1, max_buckets=3)
    for n, caller in enumerate(["a", "b", "c"]):
        limiter.take(caller, float(n) * 0.001)
    limiter.take("a", 0.01)  # refused, but a is now the most recently used
    for n in range(1000):  # an attacker cycling addresses
        limiter.take(f"addr-{n}", 0.02)
    assert len(limiter) == 3


def test_recently_used_buckets_survive_eviction():
    limiter = RateLimiter(per_s=1.0, burst=1, max_buckets=2)
    limiter.take("a", 0.0)
    limiter.take("b", 0.0)
    limiter.take("a", 0.0)  # touch a: b is now least recently used
    limiter.take("c", 0.0)  # evicts b
    assert limiter.take("a", 0.0) > 0  # a kept its empty bucket
    assert limiter.take("b", 0.0) == 0.0  # b starts again full


@pytest.mark.parametrize(("per_s", "burst"), [(-1.0, 10), (1.0, 0)])
def test_bad_settings_name_the_variable(per_s, burst):
    with pytest.raises(ValueError, match="IMGSEL_RATE_LIMIT"):
        RateLimiter(per_s, burst)


@pytest.mark.parametrize(("wait", "header"), [(0.001, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (30.2, "31")])
def test_retry_after_is_whole_seconds_rounded_up(wait, header):
    assert retry_after_header(wait) == header
