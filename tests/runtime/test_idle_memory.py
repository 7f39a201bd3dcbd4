"""The idle trimmer of the python-backend models and the gateway: it trims once per pause, never while a batch runs,
never between two batches closer than the pause, and does nothing where the C library has no malloc_trim."""

from __future__ import annotations

import time

from runtime.idle_memory import IdleTrim, glibc_trim


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trimmer(clock: Clock, calls: list[int]) -> IdleTrim:
    return IdleTrim(idle_s=2.0, trim=lambda: calls.append(1), clock=clock)


def test_nothing_ran_nothing_to_trim():
    clock, calls = Clock(), []
    idle = trimmer(clock, calls)
    clock.now += 60
    assert not idle.trim_if_due() and calls == []


def test_one_trim_per_pause_after_the_last_batch():
    clock, calls = Clock(), []
    idle = trimmer(clock, calls)
    with idle.busy():
        clock.now += 5  # a long batch: the pause counts from its end
    clock.now += 1.9
    assert not idle.trim_if_due()
    clock.now += 0.1
    assert idle.trim_if_due() and calls == [1]
    clock.now += 60
    assert not idle.trim_if_due() and idle.trims == 1  # nothing ran since: no second trim
    with idle.busy():
        pass
    clock.now += 2
    assert idle.trim_if_due() and idle.trims == 2


def test_never_while_a_batch_runs():
    clock, calls = Clock(), []
    idle = trimmer(clock, calls)
    with idle.busy():
        clock.now += 60
        assert not idle.trim_if_due()
        with idle.busy():  # a second instance thread overlapping the first
            pass
        clock.now += 60
        assert not idle.trim_if_due()
    assert calls == []


def test_the_thread_trims_in_a_real_pause_and_stops():
    calls = []
    idle = IdleTrim(idle_s=0.05, trim=lambda: calls.append(1)).start()
    with idle.busy():
        pass
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [1]
    idle.stop()
    time.sleep(0.1)  # the loop has seen the stop
    with idle.busy():
        pass
    time.sleep(0.2)
    assert calls == [1]


def test_glibc_trim_runs_here_and_without_glibc_nothing_starts(monkeypatch):
    trim = glibc_trim()
    assert trim is not None  # the project runs on glibc Linux (CI and the images)
    trim()
    idle = IdleTrim(trim=None)
    monkeypatch.setattr(idle, "_trim", None)
    with idle.busy():
        pass
    assert not idle.trim_if_due() and idle.start() is idle
