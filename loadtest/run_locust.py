"""`make loadtest`: start the stack on free loopback ports, run locust headless for a bounded time, stop.

python -m loadtest.run_locust [--users 8] [--spawn-rate 2] [--run-time 60s]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from loadtest.products import PROJECT_ROOT
from tools.launcher import running_stack, settings_on_free_ports


def locust_command(
    host: str, users: int, spawn_rate: float, run_time: str, stop_timeout_s: int, extra: list[str] = ()
) -> list[str]:
    """Headless locust on loadtest/locustfile.py against `host` (make loadtest, the soak, the fault runs)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(PROJECT_ROOT / "loadtest" / "locustfile.py"),
        "--headless",
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "--run-time",
        run_time,
        "--stop-timeout",
        str(stop_timeout_s),  # in-flight requests finish (or time out) before the summary
        *extra,
        "--only-summary",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--spawn-rate", type=float, default=2)
    parser.add_argument("--run-time", default="60s")
    args = parser.parse_args(argv)
    settings = settings_on_free_ports(
        model_repository=str(PROJECT_ROOT / "model_repository"),
    )
    results = PROJECT_ROOT / "loadtest" / "results"
    results.mkdir(exist_ok=True)
    with running_stack(settings):
        csv = results / f"locust-{time.strftime('%Y%m%d-%H%M%S')}"
        command = locust_command(
            f"http://{settings.host}:{settings.port}",
            args.users,
            args.spawn_rate,
            args.run_time,
            10,
            ["--csv", str(csv)],
        )
        return subprocess.run(command, cwd=PROJECT_ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
