"""Hands the heap memory a python-backend model has freed back to the operating system once the model has been idle
for a moment (glibc `malloc_trim`).

Why: glibc keeps freed heap pages for reuse. After a few batches the preprocess stub holds about 110 MB (batches of 8)
to 180 MB (batches of 64) that nothing uses any more (DALI's per-batch buffers, numpy temporaries), and that is what
kept a second preprocess instance from fitting in the stack's 1 GB idle budget (BENCHMARKS.md, issue #13). Trimming
after every batch would make the next batch fault those pages in again (tens of milliseconds), so it waits for a pause
in the traffic instead: under load nothing changes, at idle the memory goes back.

Standard library only: the model files import it from the project checkout (IMGSEL_PROJECT_ROOT on sys.path).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

IDLE_S = 2.0  # no execute() for this long: a pause, not a gap between two batches of one burst


def glibc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class IdleTrim:
    """`with trimmer.busy(): ...` around each execute(); a daemon thread trims once per pause of `idle_s`."""

    def __init__(self, idle_s: float = IDLE_S, trim: Callable[[], object] | None = None, clock=time.monotonic):
        self.idle_s = idle_s
        self.trims = 0
        self._trim = trim if trim is not None else glibc_trim()
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._last = clock()
        self._dirty = False  # something ran since the last trim

    def busy(self) -> _Busy:
        return _Busy(self)

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
        """The background thread (a daemon: it never holds up the stub's exit). Without glibc it does nothing."""
        if self._trim is not None:
            threading.Thread(target=self._loop, name="idle-trim", daemon=True).start()
        return self

    def _loop(self) -> None:
        while True:
            time.sleep(self.idle_s / 2)
            self.trim_if_due()


class _Busy:
    def __init__(self, owner: IdleTrim):
        self.owner = owner

    def __enter__(self) -> None:
        with self.owner._lock:
            self.owner._running += 1
            self.owner._dirty = True

    def __exit__(self, *exc) -> None:
        with self.owner._lock:
            self.owner._running -= 1
            self.owner._last = self.owner._clock()
