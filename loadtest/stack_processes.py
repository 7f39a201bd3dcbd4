"""The processes of one running stack, found by command line in /proc (so a stack started by the test fixtures,
which hands out only its settings, can be inspected too), their resident memory, and a second gateway on a running
stack's Triton, with a database of its own (fuzzers write to the placeholder library and the search index; the
session stack's tests assume theirs untouched) or sharing one with other gateways (consistency tests).

Names: `gateway`, `tritonserver`, `stub <model>` (one per python-backend model instance; `stub <model>#2` for a second
instance of the same model).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from gateway.settings import Settings
from tools.database import EmbeddedDatabase
from tools.launcher import free_port, start_gateway
from tools.supervisor import STUB_BINARY, command_lines


def process_name(command: list[str], settings: Settings) -> str | None:
    """The stack role of a process with this command line, or None when it is not part of this stack."""
    repository = str(Path(settings.model_repository).resolve())
    if command[0].endswith(STUB_BINARY) and len(command) > 1 and command[1].startswith(repository + os.sep):
        return f"stub {Path(command[1]).relative_to(repository).parts[0]}"  # <repository>/<model>/1/model.py
    if Path(command[0]).name == "tritonserver" and f"--http-port={settings.triton_http_port}" in command:
        return "tritonserver"
    if "gateway.app:app" in command and "--port" in command:
        port = command[command.index("--port") + 1] if command.index("--port") + 1 < len(command) else ""
        return "gateway" if port == str(settings.port) else None
    return None


def stack_processes(settings: Settings) -> dict[str, int]:
    """Role -> PID for every live process of the stack that `settings` describes."""
    found: dict[str, int] = {}
    for pid, command in sorted(command_lines()):
        name = process_name(command, settings)
        if name is None:
            continue
        key, n = name, 1
        while key in found:
            n += 1
            key = f"{name}#{n}"
        found[key] = pid
    return found


def status_mb(pid: int, field: str) -> float | None:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...) in MB, None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def database_processes(settings: Settings) -> list[int]:
    """The PIDs of the stack's embedded PostgreSQL (the postmaster, found by its postmaster.pid, and its children);
    empty when the stack uses an external database."""
    import psutil

    try:
        postmaster = int((Path(settings.data_dir) / "postgres" / "postmaster.pid").read_text().split()[0])
        return [postmaster, *(p.pid for p in psutil.Process(postmaster).children(recursive=True))]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


def memory_mb(processes: dict[str, int | list[int]]) -> dict[str, dict[str, float]]:
    """{"rss": {name: MB, ..., "total": MB}, "pss": {...}} of these processes (a name may stand for several PIDs,
    summed). PSS (proportional set size) counts a page that k processes share as 1/k in each, so its total is what
    the processes hold together; the RSS total counts shared pages once per process (the python backend's
    shared-memory regions are mapped by tritonserver and by a stub; libraries by every process; PostgreSQL's shared
    buffers by every backend). Processes that are gone or unreadable are left out."""
    import psutil

    usage: dict[str, dict[str, float]] = {"rss": {}, "pss": {}}
    for name, pids in processes.items():
        for pid in [pids] if isinstance(pids, int) else pids:
            try:
                info = psutil.Process(pid).memory_full_info()
            except psutil.Error:
                continue
            usage["rss"][name] = usage["rss"].get(name, 0.0) + info.rss / 2**20
            usage["pss"][name] = usage["pss"].get(name, 0.0) + info.pss / 2**20
    for kind in usage.values():
        kind["total"] = sum(kind.values())
        kind.update((name, round(value, 1)) for name, value in kind.items())
    return usage


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB, None when it is gone."""
    return status_mb(pid, "VmRSS")


@contextmanager
def second_gateway(
    settings: Settings,
    data_dir: Path,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> Iterator[Settings]:
    """A gateway on a free port over the Triton of `settings`; stopped on exit. Its state: `database_url` (shared
    with other gateways) or, when None, an embedded database of its own under `data_dir` (stopped on exit too)."""
    own = settings.model_copy(update={"port": free_port(), "data_dir": str(data_dir)})
    env = {"IMGSEL_DATA_DIR": str(data_dir), **(extra_env or {})}
    with ExitStack() as started:
        if database_url is None:
            database = EmbeddedDatabase(data_dir)
            database_url = database.start()
            started.callback(database.stop)
        env["IMGSEL_DATABASE_URL"] = database_url
        child = start_gateway(own, env)
        started.callback(child.stop)
        yield own
