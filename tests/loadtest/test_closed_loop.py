"""The closed loop every load tool drives a service with (loadtest.closed_loop)."""

from __future__ import annotations

import contextlib
import threading

from loadtest.closed_loop import closed_loop, percentile


def test_each_client_sends_its_own_requests_back_to_back_and_failures_are_counted_not_timed():
    sent: list[int] = []
    opened: list[int] = []
    lock = threading.Lock()

    @contextlib.contextmanager
    def session(worker: int):
        with lock:
            opened.append(worker)

        def send(k: int) -> int:
            with lock:
                sent.append(k)
            if k % 5 == 0:
                raise RuntimeError("failed request")
            return k * 10

        yield send

    loop = closed_loop(3, 0.05, session)
    assert sorted(opened) == [0, 1, 2]  # one session a client
    assert {k % 3 for k in sent} == {0, 1, 2} and len(set(sent)) == len(sent)  # k = worker, worker + 3, ...
    failed = [k for k in sent if k % 5 == 0]
    assert loop.failures == len(failed) > 0
    assert sorted(loop.answers) == sorted(k * 10 for k in sent if k % 5)
    assert len(loop.latencies) == len(loop.answers) and loop.latencies == sorted(loop.latencies)
    summary = loop.summary(images_per_request=8)
    assert summary["products"] == len(loop.answers) and summary["failures"] == loop.failures
    assert summary["images_per_s"] == round(8 * len(loop.answers) / loop.wall, 1)
    assert summary["p99_ms"] >= summary["p50_ms"] >= 0


def test_percentile_is_the_nearest_rank_below():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert percentile([], 0.5) is None
