"""Supervise the embedded Triton server and the gateway together (`make run`).

Without IMGSEL_DATABASE_URL it first starts the embedded PostgreSQL (tools.database, data under IMGSEL_DATA_DIR) and
hands its URL to the gateway; it is restarted if it dies and stopped last. Then it starts the `tritonserver` binary
from the nvidia-pytriton wheel (unpacked, not its Python API) on the generated
model repository, waits until every model is READY, then starts the gateway (uvicorn). Triton is supervised
(tools.supervisor): after a crash, or the death of one of its model processes, its leftovers are cleaned up and it is
restarted with backoff while the gateway keeps answering (503 with Retry-After until Triton is back); when the
restart attempts run out both stop and the exit code is 1. SIGTERM or Ctrl-C stops both, also during a restart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Event, Thread

from build_engines.triton_server import bundled_libs, server_binary, server_root
from contract.tensors import ENSEMBLE
from gateway.api.access import check_exposure as refuse_open_exposure
from gateway.api.access import load_api_keys
from gateway.decisions.access import AccessConfigError
from gateway.settings import PROJECT_ROOT, Settings
from tools.database import DatabaseWatchdog, EmbeddedDatabase
from tools.supervisor import RestartPolicy, StartFailed, TritonSupervisor

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class LaunchError(RuntimeError):
    pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_on_free_ports(**overrides) -> Settings:
    """Settings for a private stack (tests, benchmarks) that cannot collide with a running `make run`."""
    ports = {name: free_port() for name in ("port", "triton_http_port", "triton_grpc_port", "triton_metrics_port")}
    return Settings.from_env({}, **{**ports, **overrides})  # defaults, not this process's IMGSEL_ variables


def prepare_backend_dir(triton_home: Path) -> Path:
    """The stub is looked up only at <backend-dir>/python/triton_python_backend_stub: assemble that directory."""
    wheel_root = server_root(triton_home)
    stub = wheel_root / "python_backend_stubs" / PYTHON_VERSION / "triton_python_backend_stub"
    if not stub.is_file():
        raise LaunchError(f"no Triton python stub for Python {PYTHON_VERSION} under {wheel_root}; run `make triton`")
    backend = triton_home / "backends" / "python"
    backend.mkdir(parents=True, exist_ok=True)
    for source in (
        wheel_root / "backends" / "python" / "libtriton_python.so",
        wheel_root / "backends" / "python" / "triton_python_backend_utils.py",
        stub,
    ):
        target = backend / source.name
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copy2(source, target)
    return backend.parent


def triton_command(settings: Settings, shm_prefix: str = "") -> tuple[list[str], dict[str, str]]:
    home = Path(settings.triton_home)
    binary = server_binary(home)
    if not binary.is_file():
        raise LaunchError(f"tritonserver not found at {binary}; run `make triton` (unpacks the nvidia-pytriton wheel)")
    repository = Path(settings.model_repository)
    if not (repository / ENSEMBLE / "config.pbtxt").is_file():
        raise LaunchError(f"no model repository at {repository}; run `make repo PROFILE=cpu`")
    command = [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={prepare_backend_dir(home)}",
        f"--cache-directory={server_root(home) / 'caches'}",
        "--http-address=127.0.0.1",
        f"--http-port={settings.triton_http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={settings.triton_grpc_port}",
        f"--metrics-port={settings.triton_metrics_port}",
        "--allow-gpu-metrics=false",
        "--exit-on-error=true",
        "--strict-readiness=true",
        "--log-verbose=0",
    ]
    if shm_prefix:  # this server's python-backend shared-memory regions: /dev/shm/<prefix>*, removed after a crash
        command.append(f"--backend-config=python,shm-region-prefix-name={shm_prefix}")
    env = dict(os.environ)
    # The copied backend library loses its relative RPATH; the 3.11 stub links libpython from the interpreter's LIBDIR.
    libs = [str(bundled_libs(home)), sysconfig.get_config_var("LIBDIR") or ""]
    env["LD_LIBRARY_PATH"] = ":".join(p for p in [*libs, env.get("LD_LIBRARY_PATH", "")] if p)
    return command, env


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Child:
    """A supervised process whose last output lines are kept for error messages."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]):
        self.name = name
        self.tail: deque[str] = deque(maxlen=40)
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",  # decoders log raw file bytes: a strict decode would kill the pump, then block the child
            bufsize=1,
            start_new_session=True,
        )
        self.pump_done = Event()  # set when the child's output has been read to the end
        Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            if not line.strip():
                continue
            self.tail.append(line.rstrip())
            # The gateway's JSON log lines pass through whole so the launcher's output stays parseable; plain text
            # (Triton's log) is prefixed with the child's name.
            print(line if line.startswith("{") else f"[{self.name}] {line}", end="", flush=True)
        self.pump_done.set()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL to the whole process group: Triton's model processes are in it and outlive a killed
        server (start_new_session makes the group id the child's pid)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # the group is empty: everything exited
            pass
        self.process.wait()

    def failure_summary(self) -> str:
        lines = [line for line in self.tail if "error" in line.lower() or "failed" in line.lower()]
        return "\n".join(lines[-10:] or list(self.tail)[-10:])


def wait_until(predicate, child: Child, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if not child.alive():
            raise LaunchError(
                f"{child.name} exited (code {child.process.returncode}) before {what}:\n{child.failure_summary()}"
            )
        if time.monotonic() > deadline:
            raise LaunchError(f"{child.name} not {what} after {timeout:.0f} s:\n{child.failure_summary()}")
        time.sleep(0.2)


def check_ports(settings: Settings, include_gateway: bool = True) -> None:
    """Fail early and clearly: a port held by another server would otherwise answer our readiness probes."""
    wanted = {"gateway (IMGSEL_PORT)": (settings.host, settings.port)} if include_gateway else {}
    wanted |= {
        "Triton HTTP (IMGSEL_TRITON_HTTP_PORT)": ("127.0.0.1", settings.triton_http_port),
        "Triton gRPC (IMGSEL_TRITON_GRPC_PORT)": ("127.0.0.1", settings.triton_grpc_port),
        "Triton metrics (IMGSEL_TRITON_METRICS_PORT)": ("0.0.0.0", settings.triton_metrics_port),
    }
    taken = [f"{name} port {port} on {host}" for name, (host, port) in wanted.items() if port_in_use(host, port)]
    if taken:
        raise LaunchError("port already in use: " + "; ".join(taken) + " (set the variable to another port)")


def check_exposure(settings: Settings) -> None:
    """Before binding: malformed API keys, or no keys on a non-loopback IMGSEL_HOST without
    IMGSEL_ALLOW_UNAUTHENTICATED, stop the launch (the rule is gateway.decisions.access.exposure_problem)."""
    try:
        refuse_open_exposure(settings, load_api_keys(settings))
    except AccessConfigError as error:
        raise LaunchError(str(error)) from None


def spawn_triton(settings: Settings, shm_prefix: str = "") -> Child:
    check_ports(settings, include_gateway=False)
    command, env = triton_command(settings, shm_prefix)
    return Child("triton", command, env)


def triton_ready(settings: Settings) -> bool:
    return http_ok(f"http://127.0.0.1:{settings.triton_http_port}/v2/health/ready")


def start_supervised_triton(settings: Settings) -> TritonSupervisor:
    supervisor = TritonSupervisor(
        spawn=lambda prefix: spawn_triton(settings, prefix),
        ready=lambda: triton_ready(settings),
        policy=RestartPolicy(settings.triton_restart_attempts, settings.triton_restart_backoff_s),
        startup_timeout_s=settings.startup_timeout_s,
    )
    try:
        supervisor.start()
    except BaseException as error:  # also Interrupted: no server is left running
        supervisor.stop()
        if isinstance(error, StartFailed):
            raise LaunchError(str(error)) from None
        raise
    return supervisor


def start_gateway(settings: Settings, extra_env: dict[str, str] | None = None) -> Child:
    env = {**os.environ, **(extra_env or {})}
    env["IMGSEL_TRITON_GRPC_URL"] = f"127.0.0.1:{settings.triton_grpc_port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "gateway.app:app",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]
    gateway = Child("gateway", command, env)
    try:
        wait_until(lambda: http_ok(f"http://{settings.host}:{settings.port}/healthz"), gateway, 60, "serving")
    except BaseException:
        gateway.stop()
        raise
    return gateway


@dataclass
class Stack:
    settings: Settings
    triton: TritonSupervisor  # .current is the running server, .kill() injects a crash, .events its history
    gateway: Child
    database: EmbeddedDatabase | None  # None: an external database (IMGSEL_DATABASE_URL)
    database_url: str
    database_watchdog: DatabaseWatchdog | None

    @property
    def children(self) -> list[Child]:
        return [self.triton.current, self.gateway]


def embedded_database(settings: Settings, extra_env: dict[str, str] | None) -> EmbeddedDatabase | None:
    """The embedded server the gateway needs, or None when it is given a database URL. Read as the gateway reads its
    settings: this process's environment, then `extra_env`, then `settings`."""
    env = {**os.environ, **(extra_env or {})}
    if env.get("IMGSEL_DATABASE_URL") or settings.database_url.get_secret_value():
        return None
    return EmbeddedDatabase(Path(env.get("IMGSEL_DATA_DIR") or settings.data_dir))


@contextmanager
def supervised_stack(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The embedded database (unless a URL is given), supervised Triton, then the gateway once every model is ready;
    all stopped on exit in the reverse order (gateway first, so no request reaches a stopped server)."""
    env = dict(extra_env or {})
    with ExitStack() as started:
        database = embedded_database(settings, extra_env)
        watchdog = None
        if database is not None:
            env["IMGSEL_DATABASE_URL"] = database.start()
            started.callback(database.stop)
            watchdog = DatabaseWatchdog(database).start()  # restarts the server if it dies
            started.callback(watchdog.stop)
        url = env.get("IMGSEL_DATABASE_URL") or os.environ.get("IMGSEL_DATABASE_URL") or ""
        if not url and settings.database_url.get_secret_value():
            url = env["IMGSEL_DATABASE_URL"] = settings.database_url.get_secret_value()
        triton = start_supervised_triton(settings)
        started.callback(triton.stop)
        gateway = start_gateway(settings, env)
        started.callback(gateway.stop)
        yield Stack(settings, triton, gateway, database, url, watchdog)


@contextmanager
def running_stack(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[list[Child]]:
    """supervised_stack, yielding [triton, gateway] processes as they are at start."""
    with supervised_stack(settings, extra_env) as stack:
        yield stack.children


class Interrupted(Exception):
    """SIGTERM or SIGINT: unwinds from wherever the main thread is (also a start or restart) through the cleanup."""


def on_stop_signal(signum, _frame) -> None:
    for number in (signal.SIGTERM, signal.SIGINT):  # one stop request; the cleanup itself is not interrupted
        signal.signal(number, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def run(settings: Settings) -> int:
    check_exposure(settings)
    check_ports(settings)
    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    started = time.monotonic()
    try:
        with supervised_stack(settings) as stack:
            print(
                f"imgsel ready in {time.monotonic() - started:.1f} s: http://{settings.host}:{settings.port} "
                f"(docs at /docs; Ctrl-C stops)",
                flush=True,
            )
            while not stack.triton.gave_up.is_set() and stack.gateway.alive():
                time.sleep(0.2)
    except Interrupted:
        return 0
    if stack.triton.gave_up.is_set():
        print(f"imgsel: {stack.triton.failure}", file=sys.stderr)
    else:
        gateway = stack.gateway
        print(
            f"gateway exited unexpectedly (code {gateway.process.returncode}):\n{gateway.failure_summary()}",
            file=sys.stderr,
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    try:
        return run(Settings.from_env())
    except LaunchError as error:
        print(f"imgsel: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
