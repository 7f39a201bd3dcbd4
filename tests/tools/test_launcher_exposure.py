"""The launcher refuses, before binding anything, an open API on a non-loopback address and malformed keys
(tools.launcher.check_exposure; the rule itself is gateway.decisions.access.exposure_problem)."""

from __future__ import annotations

import pytest

from gateway.settings import Settings
from tools.launcher import LaunchError, check_exposure, run


def test_open_api_on_all_interfaces_is_refused():
    with pytest.raises(LaunchError, match="IMGSEL_HOST=0.0.0.0 is not a loopback address"):
        check_exposure(Settings.from_env({"IMGSEL_HOST": "0.0.0.0"}))


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"IMGSEL_HOST": "0.0.0.0", "IMGSEL_API_KEYS": "curate:k1"},
        {"IMGSEL_HOST": "0.0.0.0", "IMGSEL_ALLOW_UNAUTHENTICATED": "true"},
        {"IMGSEL_HOST": "::1"},
    ],
)
def test_allowed(environ):
    check_exposure(Settings.from_env(environ))


def test_malformed_keys_stop_the_launch_without_showing_the_key():
    with pytest.raises(LaunchError, match="IMGSEL_API_KEYS entry 1") as raised:
        check_exposure(Settings.from_env({"IMGSEL_API_KEYS": "curate-only-Secret9"}))
    assert "Secret9" not in str(raised.value)


def test_run_checks_before_binding(monkeypatch):
    """run() refuses before any port check or child process."""
    import tools.launcher as launcher

    monkeypatch.setattr(launcher, "check_ports", lambda *a, **k: pytest.fail("ports checked before exposure"))
    with pytest.raises(LaunchError, match="not a loopback address"):
        run(Settings.from_env({"IMGSEL_HOST": "0.0.0.0"}))
