"""gateway.clients.breaker: the circuit breaker's states on a fake clock."""

from __future__ import annotations

import pytest

from gateway.clients.breaker import CircuitBreaker, State


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock) -> CircuitBreaker:
    return CircuitBreaker(cooldown_s=2.0, clock=clock)


def test_closed_allows_every_call(breaker):
    assert all(breaker.allow() for _ in range(5))
    status = breaker.status()
    assert (status.state, status.down_for_s, status.retry_in_s, status.last_error) == (State.CLOSED, 0.0, 0.0, "")


def test_a_failure_opens_it_and_refuses_until_the_cooldown_ends(breaker, clock):
    breaker.record_failure("connection refused")
    assert not breaker.allow()
    clock.now += 1.5
    assert not breaker.allow()
    status = breaker.status()
    assert status.state is State.OPEN
    assert status.retry_in_s == pytest.approx(0.5)
    assert status.last_error == "connection refused"


def test_after_the_cooldown_exactly_one_probe_goes_through(breaker, clock):
    breaker.record_failure("down")
    clock.now += 2.0
    assert breaker.allow()  # the probe
    assert breaker.state is State.HALF_OPEN
    assert not breaker.allow()  # everyone else while the probe is in flight
    assert not breaker.allow()


def test_a_successful_probe_closes_it(breaker, clock):
    breaker.record_failure("down")
    clock.now += 2.5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is State.CLOSED
    assert breaker.allow() and breaker.allow()
    assert breaker.status().last_error == ""


def test_a_failed_probe_opens_it_for_another_cooldown(breaker, clock):
    breaker.record_failure("down")
    clock.now += 2.0
    assert breaker.allow()
    breaker.record_failure("still down")
    assert not breaker.allow()
    clock.now += 1.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_down_for_counts_from_the_first_failure_of_the_outage(breaker, clock):
    breaker.record_failure("first")
    clock.now += 2.0
    breaker.allow()
    breaker.record_failure("second")
    clock.now += 1.0
    status = breaker.status()
    assert status.down_for_s == pytest.approx(3.0)
    assert status.last_error == "second"


def test_a_new_outage_after_recovery_starts_a_new_count(breaker, clock):
    breaker.record_failure("old")
    clock.now += 10
    breaker.allow()
    breaker.record_success()
    clock.now += 50
    breaker.record_failure("new")
    clock.now += 1
    assert breaker.status().down_for_s == pytest.approx(1.0)


def test_an_abandoned_probe_frees_the_slot_for_the_next_caller(breaker, clock):
    breaker.record_failure("down")
    clock.now += 2.0
    assert breaker.allow()
    breaker.record_abandoned()
    assert breaker.state is State.OPEN
    assert breaker.allow()  # cooldown already over: the next caller probes at once
    assert not breaker.allow()


def test_abandoned_calls_leave_closed_and_open_states_alone(breaker, clock):
    breaker.record_abandoned()
    assert breaker.state is State.CLOSED
    breaker.record_failure("down")
    breaker.record_abandoned()
    assert breaker.state is State.OPEN and not breaker.allow()


def test_half_open_reports_no_wait(breaker, clock):
    breaker.record_failure("down")
    clock.now += 3
    breaker.allow()
    status = breaker.status()
    assert status.state is State.HALF_OPEN and status.retry_in_s == 0.0
