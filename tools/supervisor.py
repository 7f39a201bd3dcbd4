"""Keep one tritonserver running beside the gateway: watch it and its python-backend model processes, and after a
crash clean up what it left behind and start it again, with backoff and a bounded number of attempts.

Measured on the embedded Triton 2.51 (RELIABILITY.md, "Triton faults"):
- after `tritonserver` is killed with SIGKILL its model processes (`triton_python_backend_stub`, one per model
  instance) live on as orphans, ignore SIGTERM, and keep their shared-memory regions in /dev/shm;
- a model process that dies while the server lives is not restarted: the model stays READY and every call to it fails
  with "Stub process '<model>_0_0' is not healthy". The supervisor treats that as a server crash too.
The stubs stay in the server's process group (they do not call setsid), so SIGKILL to the group reaches them; stubs
are also found by command line (parent pid, shared-memory region name) in case one ever leaves the group. Each server
gets its own region-name prefix (`--backend-config=python,shm-region-prefix-name=<prefix>`) so its regions can be
removed without touching another server's.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

STUB_BINARY = "triton_python_backend_stub"
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # a server that ran this long before crashing was healthy: the crash count starts over
POLL_S = 0.5
REAP_WAIT_S = 5.0


class StartFailed(RuntimeError):
    """A server that exited or timed out before it was ready."""


class Process(Protocol):
    name: str

    @property
    def process(self): ...

    def alive(self) -> bool: ...

    def stop(self, timeout: float = 15.0) -> None: ...

    def failure_summary(self) -> str: ...


def log(message: str) -> None:
    print(f"[supervisor] {message}", file=sys.stderr, flush=True)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class RestartPolicy:
    """Delay before the next restart, or None to give up: doubles per consecutive crash, capped; a crash after
    `stable_s` of healthy running starts the count over."""

    attempts: int
    backoff_s: float
    max_backoff_s: float = MAX_BACKOFF_S
    stable_s: float = STABLE_S
    crashes: int = 0

    def after_crash(self, up_for_s: float) -> float | None:
        if up_for_s >= self.stable_s:
            self.crashes = 0
        self.crashes += 1
        if self.crashes > self.attempts:
            return None
        return min(self.backoff_s * 2 ** (self.crashes - 1), self.max_backoff_s)


def new_shm_prefix() -> str:
    return f"imgsel_{os.getpid()}_{secrets.token_hex(4)}_"


# ---------------------------------------------------------------------------------------------- model processes


@dataclass(frozen=True)
class Stub:
    pid: int
    model: str  # <repository>/<model>/<version>/model.py
    region: str  # shared-memory region name: <prefix><uuid>
    parent_pid: int  # the server that started it


def parse_stub(pid: int, command: list[str]) -> Stub | None:
    """The stub's arguments: model.py, region name, default size, growth size, parent pid, backend dir, ..."""
    if not command or not command[0].endswith(STUB_BINARY) or len(command) < 6 or not command[5].isdigit():
        return None
    model_file = Path(command[1])
    model = model_file.parent.parent.name if model_file.name == "model.py" else model_file.name
    return Stub(pid, model, command[2], int(command[5]))


def command_lines(proc: Path = Path("/proc")) -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every live process with a command line: the one /proc walk (supervisor, loadtest scripts)."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # exited while we looked
            continue
        if raw:
            yield int(entry.name), [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def find_stubs(proc: Path = Path("/proc")) -> list[Stub]:
    return [stub for pid, command in command_lines(proc) if (stub := parse_stub(pid, command)) is not None]


def server_stubs(stubs: list[Stub], server_pid: int, shm_prefix: str) -> list[Stub]:
    return [s for s in stubs if s.parent_pid == server_pid or (shm_prefix and s.region.startswith(shm_prefix))]


def is_gone(pid: int, proc: Path = Path("/proc")) -> bool:
    """Exited (a zombie holds no memory and no mappings, so it counts as gone)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def reap_server(server_pid: int, shm_prefix: str, shm: Path = Path("/dev/shm")) -> dict:
    """SIGKILL the server's process group and every stub it started, wait for them, remove its shm regions."""
    stubs = server_stubs(find_stubs(), server_pid, shm_prefix)
    try:
        os.killpg(server_pid, signal.SIGKILL)  # start_new_session: the group id is the server's pid
    except (ProcessLookupError, PermissionError):
        pass
    for stub in stubs:
        try:
            os.kill(stub.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + REAP_WAIT_S
    while any(not is_gone(s.pid) for s in stubs) and time.monotonic() < deadline:
        time.sleep(0.05)
    removed = []
    if shm_prefix:
        for region in sorted(shm.glob(f"{shm_prefix}*")):
            region.unlink(missing_ok=True)
            removed.append(region.name)
    return {
        "stubs_killed": sorted(f"{s.model} ({s.pid})" for s in stubs),
        "stubs_left": sorted(f"{s.model} ({s.pid})" for s in stubs if not is_gone(s.pid)),
        "shm_removed": removed,
    }


# ---------------------------------------------------------------------------------------------- the supervisor


@dataclass
class Event:
    at: float  # time.time()
    kind: str  # started, crashed, cleaned, restart_failed, gave_up
    detail: dict = field(default_factory=dict)


class TritonSupervisor:
    """`start()` runs the first server until ready (raising StartFailed), then a thread watches and restarts it.

    `spawn(shm_prefix)` starts a server process and returns at once; `ready()` asks it over HTTP. `events` is the
    history (fault scripts read it); `gave_up` is set when the attempts ran out, with the reason in `failure`.
    """

    def __init__(
        self,
        spawn: Callable[[str], Process],
        ready: Callable[[], bool],
        policy: RestartPolicy,
        startup_timeout_s: float,
        reap: Callable[[int, str], dict] = reap_server,
    ):
        self.spawn, self.ready, self.policy, self.reap = spawn, ready, policy, reap
        self.startup_timeout_s = startup_timeout_s
        self.current: Process | None = None
        self.shm_prefix = ""
        self.stubs: list[Stub] = []
        self.ready_at = 0.0
        self.events: list[Event] = []
        self.failure = ""
        self.gave_up = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="triton-supervisor", daemon=True)

    def start(self) -> None:
        self._start_server()
        self._thread.start()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL to its group) and clean up, also while a restart is under way."""
        with self._lock:
            self._stopping.set()
            child, prefix = self.current, self.shm_prefix
        if child is not None:
            child.stop()
            self.reap(child.process.pid, prefix)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to the current server (fault injection); returns its pid."""
        pid = self.current.process.pid
        os.kill(pid, sig)
        return pid

    def _record(self, kind: str, **detail) -> None:
        self.events.append(Event(time.time(), kind, detail))

    def _start_server(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                raise StartFailed("stopping")
            prefix = new_shm_prefix()
            try:
                child = self.spawn(prefix)
            except Exception as error:  # e.g. a port taken meanwhile: a failed attempt like any other
                raise StartFailed(f"could not start tritonserver: {error}") from error
            self.current, self.shm_prefix = child, prefix
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.ready():
            if not child.alive():
                raise StartFailed(
                    f"tritonserver {describe_exit(child.process.returncode)} before ready:\n{child.failure_summary()}"
                )
            if time.monotonic() > deadline or self._stopping.is_set():
                child.stop()
                reason = "stopping" if self._stopping.is_set() else f"not ready after {self.startup_timeout_s:.0f} s"
                raise StartFailed(f"tritonserver {reason}:\n{child.failure_summary()}")
            time.sleep(0.2)
        self.ready_at = time.monotonic()
        self.stubs = server_stubs(find_stubs(), child.process.pid, self.shm_prefix)
        self._record("started", pid=child.process.pid, stubs={s.model: s.pid for s in self.stubs})

    def fault(self) -> str | None:
        """What is wrong with the current server, or None while it and all its model processes live."""
        child = self.current
        if not child.alive():
            return f"tritonserver (pid {child.process.pid}) {describe_exit(child.process.returncode)}"
        dead = [s for s in self.stubs if is_gone(s.pid)]
        if dead:
            names = ", ".join(f"{s.model} (pid {s.pid})" for s in dead)
            return f"model process {names} of tritonserver (pid {child.process.pid}) died"
        return None

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_S):
            fault = self.fault()
            if fault is not None and not self._recover(fault):
                return

    def _recover(self, fault: str) -> bool:
        """Clean up after a crash and restart until a server is ready (True), or stop/give up (False)."""
        child = self.current
        up_for = time.monotonic() - self.ready_at
        log(f"{fault} after {up_for:.0f} s up; its last output:\n{child.failure_summary()}")
        self._record("crashed", fault=fault, up_for_s=round(up_for, 1))
        reaped = None
        while True:
            if child is not reaped:  # not again after an attempt that never spawned a process
                cleaned = self.reap(child.process.pid, self.shm_prefix)
                self._record("cleaned", **cleaned)
                log(f"cleaned up: {cleaned}")
                reaped = child
            delay = self.policy.after_crash(up_for)
            if delay is None:
                self.failure = f"tritonserver crashed {self.policy.crashes} times in a row; giving up ({fault})"
                log(self.failure)
                self._record("gave_up", reason=self.failure)
                self.gave_up.set()
                return False
            log(f"restarting tritonserver in {delay:g} s (attempt {self.policy.crashes} of {self.policy.attempts})")
            if self._stopping.wait(delay):
                return False
            try:
                self._start_server()
            except StartFailed as error:
                if self._stopping.is_set():
                    return False
                fault, up_for, child = f"restart failed: {error}", 0.0, self.current
                log(fault)
                self._record("restart_failed", error=str(error)[:500])
                continue
            log(f"tritonserver (pid {self.current.process.pid}) ready again")
            return True
