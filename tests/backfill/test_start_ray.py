"""A local Ray whose raylet misses its registration window is shut down and started again, and the final error says
what the raylet logged; a Ray already running in the process is reused."""

import pytest
import ray

from backfill import job

TIMEOUT = "The current node timed out during startup."


@pytest.fixture
def fake_ray(monkeypatch, tmp_path):
    calls = {"init": 0, "shutdown": 0, "fail": 0}

    def init(**options):
        calls["init"] += 1
        if calls["init"] <= calls["fail"]:
            raise Exception(TIMEOUT)
        calls["options"] = options

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.__setitem__("shutdown", calls["shutdown"] + 1))
    logs = tmp_path / "ray" / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.err").write_text("first line\nbind: Address already in use\n")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    return calls


def test_a_missed_registration_is_retried_after_a_shutdown(fake_ray):
    fake_ray["fail"] = job.LOCAL_RAY_ATTEMPTS - 1
    job.start_ray(2)
    assert fake_ray["init"] == job.LOCAL_RAY_ATTEMPTS
    assert fake_ray["shutdown"] == job.LOCAL_RAY_ATTEMPTS - 1
    assert fake_ray["options"]["num_cpus"] == 2 and fake_ray["options"]["include_dashboard"] is False


def test_the_last_failure_names_the_attempts_and_the_raylet_log(fake_ray):
    fake_ray["fail"] = job.LOCAL_RAY_ATTEMPTS
    with pytest.raises(RuntimeError) as failure:
        job.start_ray(2)
    message = str(failure.value)
    assert f"{job.LOCAL_RAY_ATTEMPTS} attempts" in message and TIMEOUT in message
    assert "bind: Address already in use" in message and "raylet.err" in message


def test_without_raylet_logs_the_error_says_where_it_looked(fake_ray, monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "elsewhere"))
    assert "no raylet logs under" in job.raylet_log_tail()
