"""Closed-loop load, the way `make bench` and the GPU proxy drive a service: `clients` threads, each sending its next
request as soon as its last one is answered, for a fixed time; and the latency figures they report. Standard library
only: loadtest.gpu_proxy runs it on a GPU machine that has none of the project's serving dependencies."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank below) of an ascending list; None when empty."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


@dataclass
class Loop:
    """What one closed loop saw: the answered requests' latencies (seconds, ascending) and answers (what `send`
    returned, in the order they came), the failed requests, and the loop's wall time."""

    latencies: list[float] = field(default_factory=list)
    answers: list = field(default_factory=list)
    failures: int = 0
    wall: float = 0.0

    def summary(self, images_per_request: int) -> dict:
        """Requests ("products") and images per second, p50 / p99 ms, failures."""
        answered = len(self.latencies)
        return {
            "products": answered,
            "failures": self.failures,
            "seconds": round(self.wall, 1),
            "products_per_s": round(answered / self.wall, 2),
            "images_per_s": round(answered * images_per_request / self.wall, 1),
            "p50_ms": round(1000 * statistics.median(self.latencies), 1) if self.latencies else None,
            "p99_ms": round(1000 * percentile(self.latencies, 0.99), 1) if self.latencies else None,
        }


def closed_loop(
    clients: int, seconds: float, session: Callable[[int], AbstractContextManager[Callable[[int], object]]]
) -> Loop:
    """`session(worker)` opens one client's connection (a context manager) and yields its `send(k)`, which sends
    request k (k = worker, worker + clients, ...) and returns the answer, or raises for a failed request; each client
    sends back to back until `seconds` have passed."""
    loop = Loop()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(worker: int) -> None:
        with session(worker) as send:
            k = worker
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    answer = send(k)
                except Exception:
                    with lock:
                        loop.failures += 1
                else:
                    elapsed = time.perf_counter() - started
                    with lock:
                        loop.latencies.append(elapsed)
                        loop.answers.append(answer)
                k += clients

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loop.wall = time.perf_counter() - started
    loop.latencies.sort()
    return loop
