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
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(PROJECT_ROOT / "loadtest" / "locustfile.py"),
            "--headless",
            "--host",
            f"http://{settings.host}:{settings.port}",
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "--run-time",
            args.run_time,
            "--stop-timeout",
            "10",
            "--csv",
            str(results / f"locust-{time.strftime('%Y%m%d-%H%M%S')}"),
            "--only-summary",
        ]
        return subprocess.run(command, cwd=PROJECT_ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
