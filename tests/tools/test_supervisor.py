"""tools.supervisor: restart policy, stub parsing, orphan and shared-memory cleanup on real processes, and the
supervisor restarting a fake server (a real process group with fake python-backend stubs that ignore SIGTERM, like
Triton's) after it is killed or one of its model processes dies; giving up; stopping during a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.launcher import Child
from tools.supervisor import (
    STUB_BINARY,
    RestartPolicy,
    StartFailed,
    Stub,
    TritonSupervisor,
    describe_exit,
    find_stubs,
    is_gone,
    parse_stub,
    reap_server,
    server_stubs,
)

# A fake tritonserver: starts one fake stub per model with Triton's argument layout, writes one shared-memory region
# per stub into the given folder, then says it is ready by creating <ready_dir>/<pid>.
FAKE_SERVER = """
import os, subprocess, sys, time
stub, repo, shm, ready, prefix, *models = sys.argv[1:]
for i, model in enumerate(models):
    region = f"{prefix}{i}"
    open(os.path.join(shm, region), "w").close()
    subprocess.Popen([stub, f"{repo}/{model}/1/model.py", region, "1048576", "1048576", str(os.getpid()), "/b", "336",
                      f"{model}_0_0", "DEFAULT"])
open(os.path.join(ready, str(os.getpid())), "w").close()
time.sleep(600)
"""
# The stub: ignores SIGTERM, as the orphans of a killed Triton do.
FAKE_STUB = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


class FakeTriton:
    """Paths and a spawn function for fake servers; remembers every server it started."""

    def __init__(self, root: Path, models=("preprocess", "backbone")):
        self.root, self.models = root, models
        self.stub = root / "bin" / STUB_BINARY
        self.stub.parent.mkdir()
        self.stub.symlink_to(sys.executable)  # Python runs argv[1] (model.py); argv[0] reads as the stub binary
        for model in models:
            (root / "repo" / model / "1").mkdir(parents=True)
            (root / "repo" / model / "1" / "model.py").write_text(FAKE_STUB)
        self.shm, self.ready_dir = root / "shm", root / "ready"
        self.shm.mkdir()
        self.ready_dir.mkdir()
        self.servers: list[Child] = []

    def spawn(self, prefix: str) -> Child:
        args = [str(self.stub), str(self.root / "repo"), str(self.shm), str(self.ready_dir), prefix, *self.models]
        child = Child("fake-triton", [sys.executable, "-c", FAKE_SERVER, *args], dict(os.environ))
        self.servers.append(child)
        return child

    def ready(self) -> bool:
        return bool(self.servers) and (self.ready_dir / str(self.servers[-1].process.pid)).exists()

    def reap(self, pid: int, prefix: str) -> dict:
        return reap_server(pid, prefix, shm=self.shm)

    def stubs_of(self, server: Child) -> list[Stub]:
        return [s for s in find_stubs() if s.parent_pid == server.process.pid]

    def supervisor(self, attempts: int = 3, backoff_s: float = 0.05) -> TritonSupervisor:
        return TritonSupervisor(self.spawn, self.ready, RestartPolicy(attempts, backoff_s), 30.0, reap=self.reap)


@pytest.fixture
def fake(tmp_path):
    triton = FakeTriton(tmp_path)
    yield triton
    for server in triton.servers:  # whatever a failing test left behind
        reap_server(server.process.pid, "", shm=triton.shm)


# ---------------------------------------------------------------------------------------------- pure parts


def test_describe_exit():
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(None) == "still running"


def test_backoff_doubles_per_consecutive_crash_then_gives_up():
    policy = RestartPolicy(attempts=5, backoff_s=1.0)
    assert [policy.after_crash(up_for_s=1.0) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 16.0, None]


def test_backoff_is_capped():
    policy = RestartPolicy(attempts=10, backoff_s=1.0, max_backoff_s=30.0)
    assert [policy.after_crash(0.0) for _ in range(7)][-2:] == [30.0, 30.0]


def test_a_crash_after_a_stable_run_starts_the_count_over():
    policy = RestartPolicy(attempts=2, backoff_s=1.0, stable_s=60.0)
    assert policy.after_crash(5.0) == 1.0
    assert policy.after_crash(5.0) == 2.0
    assert policy.after_crash(61.0) == 1.0  # healthy for a minute: not the same crash loop
    assert policy.after_crash(0.0) == 2.0
    assert policy.after_crash(0.0) is None


def test_parse_stub_reads_tritons_argument_layout():
    command = [
        "/x/backends/python/triton_python_backend_stub",
        "/repo/preprocess/1/model.py",
        "imgsel_12_ab_8b9c06c4-44f8",
        "1048576",
        "1048576",
        "4418",
        "/x/backends/python",
        "336",
        "preprocess_0_0",
        "DEFAULT",
    ]
    assert parse_stub(77, command) == Stub(77, "preprocess", "imgsel_12_ab_8b9c06c4-44f8", 4418)


@pytest.mark.parametrize("command", [[], ["/bin/sleep", "600"], ["/x/triton_python_backend_stub", "/m.py", "r"]])
def test_parse_stub_ignores_other_processes(command):
    assert parse_stub(1, command) is None


def test_server_stubs_by_parent_or_by_region_prefix():
    stubs = [Stub(1, "a", "mine_1", 10), Stub(2, "b", "other_1", 10), Stub(3, "c", "mine_2", 1), Stub(4, "d", "x", 1)]
    assert [s.pid for s in server_stubs(stubs, 10, "mine_")] == [1, 2, 3]
    assert [s.pid for s in server_stubs(stubs, 10, "")] == [1, 2]


# ---------------------------------------------------------------------------------------------- cleanup, real processes


def test_reap_kills_the_orphans_of_a_killed_server_and_removes_only_its_regions(fake):
    (fake.shm / "someone_else_0").touch()
    server = fake.spawn("pre_")
    wait_for(fake.ready)
    stubs = fake.stubs_of(server)
    assert sorted(s.model for s in stubs) == ["backbone", "preprocess"]

    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    time.sleep(0.3)
    assert not any(is_gone(s.pid) for s in stubs), "the stubs outlive their killed server (as Triton's do)"
    for stub in stubs:
        os.kill(stub.pid, signal.SIGTERM)  # ignored
    time.sleep(0.3)
    assert not any(is_gone(s.pid) for s in stubs)

    report = reap_server(server.process.pid, "pre_", shm=fake.shm)

    assert all(is_gone(s.pid) for s in stubs)
    assert report["stubs_left"] == []
    assert len(report["stubs_killed"]) == 2
    assert sorted(report["shm_removed"]) == ["pre_0", "pre_1"]
    assert [p.name for p in fake.shm.iterdir()] == ["someone_else_0"]


def test_reap_finds_a_stub_that_left_the_process_group_by_its_region_name(fake):
    (fake.shm / "mine_9").touch()
    runaway = subprocess.Popen(
        [str(fake.stub), str(fake.root / "repo/preprocess/1/model.py"), "mine_9", "1", "1", "999999", "/b", "3"],
        start_new_session=True,  # its own group: a group kill would miss it
    )
    wait_for(lambda: any(s.pid == runaway.pid for s in find_stubs()))
    report = reap_server(999999, "mine_", shm=fake.shm)
    runaway.wait(timeout=5)
    assert report["stubs_killed"] == [f"preprocess ({runaway.pid})"]
    assert report["shm_removed"] == ["mine_9"]


def test_child_stop_leaves_no_stub_behind(fake):
    server = fake.spawn("stop_")
    wait_for(fake.ready)
    stubs = fake.stubs_of(server)
    server.stop(timeout=1.0)  # the fake server dies on SIGTERM, its stubs ignore it: the group kill gets them
    wait_for(lambda: all(is_gone(s.pid) for s in stubs), timeout=5)


# ---------------------------------------------------------------------------------------------- the supervisor


def test_restarts_a_killed_server_and_cleans_up_after_it(fake):
    supervisor = fake.supervisor()
    supervisor.start()
    try:
        first = supervisor.current
        first_stubs = fake.stubs_of(first)
        first_prefix = supervisor.shm_prefix
        supervisor.kill()
        wait_for(lambda: supervisor.current is not first and fake.ready())
        wait_for(lambda: supervisor.events[-1].kind == "started")
        assert all(is_gone(s.pid) for s in first_stubs)
        assert not list(fake.shm.glob(f"{first_prefix}*"))
        assert supervisor.shm_prefix != first_prefix
        kinds = [e.kind for e in supervisor.events]
        assert kinds == ["started", "crashed", "cleaned", "started"]
        assert supervisor.events[1].detail["fault"].endswith("killed by SIGKILL")
        assert supervisor.current.alive()
    finally:
        supervisor.stop()
    assert not supervisor.current.alive()
    assert not list(fake.shm.iterdir())


def test_restarts_the_server_when_one_model_process_dies(fake):
    supervisor = fake.supervisor()
    supervisor.start()
    try:
        first = supervisor.current
        preprocess = next(s for s in fake.stubs_of(first) if s.model == "preprocess")
        os.kill(preprocess.pid, signal.SIGKILL)
        wait_for(lambda: supervisor.current is not first and supervisor.events[-1].kind == "started")
        assert "model process preprocess" in supervisor.events[1].detail["fault"]
        assert not first.alive()
    finally:
        supervisor.stop()


def test_gives_up_after_the_attempts_run_out(fake):
    supervisor = fake.supervisor(attempts=2, backoff_s=0.01)
    supervisor.start()
    try:
        for _ in range(3):
            server = supervisor.current
            wait_for(lambda: supervisor.events[-1].kind == "started")
            supervisor.kill()
            wait_for(lambda s=server: supervisor.current is not s or supervisor.gave_up.is_set())
        wait_for(supervisor.gave_up.is_set)
        assert "3 times in a row" in supervisor.failure
        assert [e.kind for e in supervisor.events].count("started") == 3
    finally:
        supervisor.stop()


def test_a_first_start_that_fails_raises_and_does_not_restart(fake):
    def broken(prefix):
        return Child("broken", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))

    supervisor = TritonSupervisor(broken, lambda: False, RestartPolicy(3, 0.01), 30.0, reap=fake.reap)
    with pytest.raises(StartFailed, match="exited with code 3"):
        supervisor.start()
    assert supervisor.events == []


def test_stop_during_the_restart_backoff_returns_promptly_and_starts_nothing(fake):
    supervisor = fake.supervisor(backoff_s=60.0)
    supervisor.start()
    supervisor.kill()
    wait_for(lambda: supervisor.events[-1].kind == "cleaned")
    supervisor.stop()
    assert not supervisor._thread.is_alive(), "the watcher ends without waiting out the backoff"
    assert len(fake.servers) == 1
