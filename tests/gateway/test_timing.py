"""gateway.timing: per-request phase durations on a clock the test moves by hand (no timed assertions): nested and
parallel calls of one kind counted once, overlapping kinds not subtracted twice, requests never mixed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.timing import (
    DATABASE,
    DECISIONS,
    FETCH,
    HASHING,
    PHASES,
    RECEIVE,
    TRITON,
    RequestTimer,
    end_request,
    phase,
    start_request,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return ManualClock()


def timed(clock, body):
    """Runs `body()` as one request with `clock`; its PhaseTimes at the end."""
    timer, token = start_request(clock)
    try:
        body()
    finally:
        end_request(token)
    return timer.snapshot()


def test_phases_and_gateway_add_up_to_the_total(clock):
    def body():
        clock.advance(0.001)
        with phase(FETCH):
            clock.advance(0.010)
        with phase(TRITON):
            clock.advance(0.200)
        with phase(DATABASE):
            clock.advance(0.004)
        clock.advance(0.002)

    times = timed(clock, body)
    assert times.phases == pytest.approx(
        {FETCH: 0.010, TRITON: 0.200, DATABASE: 0.004, RECEIVE: 0.0, HASHING: 0.0, DECISIONS: 0.0}
    )
    assert times.total == pytest.approx(0.217)
    assert times.gateway == pytest.approx(0.003)
    assert times.overhead == pytest.approx(0.007)  # the store's time is the gateway's when nothing hides it


async def call(name: str, started: asyncio.Event, release: asyncio.Event) -> None:
    """An outside call of kind `name`: in flight from `started` until `release`."""
    with phase(name):
        started.set()
        await release.wait()


def test_a_store_call_beside_the_triton_call_is_no_overhead(clock):
    # Triton over [0, 0.2], the store over [0.05, 0.25]: only its last 0.05 s kept the request waiting.
    async def request():
        timer, token = start_request(clock)
        try:
            t_in, t_out, d_in, d_out = (asyncio.Event() for _ in range(4))
            triton = asyncio.create_task(call(TRITON, t_in, t_out))
            await t_in.wait()
            clock.advance(0.05)
            store = asyncio.create_task(call(DATABASE, d_in, d_out))
            await d_in.wait()
            clock.advance(0.15)
            t_out.set()
            await triton
            clock.advance(0.05)
            d_out.set()
            await store
            clock.advance(0.01)
        finally:
            end_request(token)
        return timer.snapshot()

    times = asyncio.run(request())
    assert times.phases[TRITON] == pytest.approx(0.2) and times.phases[DATABASE] == pytest.approx(0.2)
    assert times.gateway == pytest.approx(0.01)
    assert times.overhead == pytest.approx(0.06)


def test_repeated_calls_add_and_unused_phases_are_zero(clock):
    def body():
        for _ in range(3):
            with phase(TRITON):
                clock.advance(0.05)
            clock.advance(0.01)

    times = timed(clock, body)
    assert times.phases == pytest.approx(
        {TRITON: 0.15, FETCH: 0.0, DATABASE: 0.0, RECEIVE: 0.0, HASHING: 0.0, DECISIONS: 0.0}
    )
    assert times.gateway == pytest.approx(0.03)


def test_a_nested_call_of_the_same_kind_counts_once(clock):
    def body():
        with phase(TRITON):
            clock.advance(0.1)
            with phase(TRITON):
                clock.advance(0.2)
            clock.advance(0.1)

    times = timed(clock, body)
    assert times.phases[TRITON] == pytest.approx(0.4)
    assert times.gateway == pytest.approx(0.0)


def test_overlapping_phases_of_different_kinds_are_not_subtracted_twice(clock):
    def body():
        with phase(FETCH):
            clock.advance(0.1)
            with phase(TRITON):
                clock.advance(0.3)
        clock.advance(0.05)

    times = timed(clock, body)
    assert times.phases[FETCH] == pytest.approx(0.4) and times.phases[TRITON] == pytest.approx(0.3)
    assert times.gateway == pytest.approx(0.05)  # not 0.45 - 0.7 clamped


def test_concurrent_tasks_of_one_request_count_the_union_of_their_intervals(clock):
    # Task a waits on Triton over [0, 0.3], task b over [0.1, 0.5]: the request waited 0.5, not 0.7.
    async def request():
        timer, token = start_request(clock)
        try:
            a_in, a_out, b_in, b_out = (asyncio.Event() for _ in range(4))
            tasks = [asyncio.create_task(call(TRITON, a_in, a_out)), asyncio.create_task(call(TRITON, b_in, b_out))]
            await a_in.wait()
            clock.advance(0.1)
            await b_in.wait()
            clock.advance(0.2)
            a_out.set()
            await tasks[0]
            clock.advance(0.2)
            b_out.set()
            await tasks[1]
            clock.advance(0.05)
        finally:
            end_request(token)
        return timer.snapshot()

    times = asyncio.run(request())
    assert times.phases[TRITON] == pytest.approx(0.5)
    assert times.total == pytest.approx(0.55) and times.gateway == pytest.approx(0.05)


def test_concurrent_requests_do_not_mix(clock):
    async def request(seconds: float, entered: asyncio.Event, go: asyncio.Event):
        timer, token = start_request(clock)
        try:
            with phase(DATABASE):
                entered.set()
                await go.wait()
                clock.advance(seconds)
        finally:
            end_request(token)
        return timer

    async def both():
        events = [asyncio.Event() for _ in range(4)]
        first = asyncio.create_task(request(0.1, events[0], events[1]))
        second = asyncio.create_task(request(0.2, events[2], events[3]))
        await events[0].wait()
        await events[2].wait()
        events[1].set()
        first_timer = await first  # leaves its phase after 0.1 s of its own
        events[3].set()
        return first_timer, await second

    first, second = asyncio.run(both())
    assert first.snapshot().phases[DATABASE] == pytest.approx(0.1)
    assert second.snapshot().phases[DATABASE] == pytest.approx(0.3)  # its interval spans both advances
    assert first is not second


def test_a_phase_left_by_an_error_is_still_counted(clock):
    def body():
        with pytest.raises(RuntimeError), phase(TRITON):
            clock.advance(0.2)
            raise RuntimeError("server gone")

    assert timed(clock, body).phases[TRITON] == pytest.approx(0.2)


def test_an_open_phase_counts_up_to_the_snapshot(clock):
    timer = RequestTimer(clock)
    timer.enter(TRITON)
    clock.advance(0.3)
    times = timer.snapshot()
    assert times.phases[TRITON] == pytest.approx(0.3) and times.gateway == pytest.approx(0.0)


def test_outside_a_request_a_phase_records_nothing(clock):
    # Start-up and background calls are no request's: after end_request the timer is no longer current.
    timer, token = start_request(clock)
    end_request(token)
    with phase(TRITON):
        clock.advance(1.0)
    assert timer.snapshot().phases[TRITON] == 0.0


def test_server_timing_header_lists_total_each_phase_gateway_and_overhead_in_ms(clock):
    def body():
        with phase(TRITON):
            clock.advance(0.0125)
        clock.advance(0.001)

    header = timed(clock, body).server_timing()
    assert header == (
        "total;dur=13.50, triton;dur=12.50, fetch;dur=0.00, database;dur=0.00, receive;dur=0.00, hashing;dur=0.00, "
        "decisions;dur=0.00, gateway;dur=1.00, overhead;dur=1.00"
    )
    assert [part.split(";")[0] for part in header.split(", ")] == [
        "total",
        *PHASES,
        HASHING,
        DECISIONS,
        "gateway",
        "overhead",
    ]


def test_the_gateways_own_work_is_shown_apart_and_stays_in_its_share(clock):
    def body():
        clock.advance(0.001)
        with phase(HASHING):
            clock.advance(0.004)
            with phase(TRITON):  # a call made while hashing: still waiting on Triton
                clock.advance(0.002)
        clock.advance(0.001)

    times = timed(clock, body)
    assert times.phases[HASHING] == pytest.approx(0.006) and times.phases[TRITON] == pytest.approx(0.002)
    assert times.gateway == pytest.approx(0.006)  # total 0.008 less Triton's 0.002; hashing not subtracted
