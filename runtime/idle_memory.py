"""Hands the heap memory a process has freed back to the operating system once it has been idle for a moment (glibc
`malloc_trim`). Used by the python-backend models and the gateway.

Why: glibc keeps freed heap pages for reuse. After a 16-client burst the preprocess stub held ~455 MB and the gateway
~275 MB that nothing used any more (DALI's per-batch buffers, numpy temporaries, request bodies), which is what kept
the stack above its 1 GB idle budget (BENCHMARKS.md, issue #13). Trimming after every batch, or mapping every large
block on its own (MALLOC_MMAP_THRESHOLD_: +2.2 ms gateway p50 per product, measured), makes the next request fault
those pages in again, so the trim waits for a pause in the traffic instead: under load nothing changes, at idle the
memory goes back.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

IDLE_S = 2.0  # no request for this long: a pause, not a gap between two batches of one burst


def glibc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class IdleTrim:
    """`with trimmer.busy(): ...` around each request (or batch); a daemon thread trims once per pause of `idle_s`.
    `busy()` works from threads and from an event loop alike (it only counts, under a lock held for nanoseconds)."""

    def __init__(self, idle_s: float = IDLE_S, trim: Callable[[], object] | None = None, clock=time.monotonic):
        self.idle_s = idle_s
        self.trims = 0
        self._trim = trim if trim is not None else glibc_trim()
        self._clock = clock
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._running = 0
        self._last = clock()
        self._dirty = False  # something ran since the last trim

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
            self._dirty = True
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._last = self._clock()

    def due(self) -> bool:
        """A trim is due: nothing running, something ran since the last trim, and the pause is long enough."""
        with self._lock:
            return self._dirty and not self._running and self._clock() - self._last >= self.idle_s

    def trim_if_due(self) -> bool:
        if self._trim is None or not self.due():
            return False
        self._trim()
        with self._lock:
            self._dirty = False
            self.trims += 1
        return True

    def start(self) -> IdleTrim:
        """The background thread (a daemon: it never holds up the process's exit). Without glibc it does nothing."""
        if self._trim is not None:
            self._stopped = threading.Event()  # a fresh one: a stopped trimmer may start again (a second lifespan)
            threading.Thread(target=self._loop, args=(self._stopped,), name="idle-trim", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.idle_s / 2):
            self.trim_if_due()
