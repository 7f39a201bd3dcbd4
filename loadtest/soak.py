"""Soak: a private stack under steady mixed load (the scenarios of loadtest/locustfile.py: 8-image /v1/select,
/v1/dedup, /v1/search) for N minutes, sampling every ~10 s the resident memory of every stack process (gateway,
tritonserver, each python-backend model process by model name) and the latency percentiles of the last interval.

    python -m loadtest.soak [--minutes 10] [--users 8] [--interval 10] [--warmup 60]

Memory growth of a process: median RSS of the last `window` seconds against the median of the first `window`
seconds after warm-up (window = 2 minutes, or a third of the measured span when the run is shorter); goal < 10%.
Latency per interval is locust's own "current" percentiles (its last 10 s of responses) at each sample time.
Writes loadtest/results/soak-<time>.json, and a PNG of RSS and p50/p95 over time when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from loadtest.products import PROJECT_ROOT
from loadtest.run_locust import locust_command
from loadtest.stack_processes import rss_mb, stack_processes

GROWTH_GOAL_PCT = 10.0
WINDOW_S = 120.0


def growth(samples: list[tuple[float, float]], warmup_s: float, window_s: float = WINDOW_S) -> dict | None:
    """(t, MB) samples of one process -> baseline/final medians and growth in %; None without enough samples."""
    measured = [(t, mb) for t, mb in samples if t >= warmup_s]
    if len(measured) < 2:
        return None
    span = measured[-1][0] - measured[0][0]
    window = min(window_s, span / 3) if span > 0 else 0.0
    first = [mb for t, mb in measured if t <= measured[0][0] + window]
    last = [mb for t, mb in measured if t >= measured[-1][0] - window]
    baseline, final = statistics.median(first), statistics.median(last)
    return {
        "baseline_mb": round(baseline, 1),
        "final_mb": round(final, 1),
        "growth_pct": round(100.0 * (final - baseline) / baseline, 1) if baseline else None,
        "window_s": round(window, 1),
    }


def history_at(rows: list[dict], t_unix: float) -> dict | None:
    """The last locust history row (Aggregated) written at or before `t_unix`."""
    before = [row for row in rows if float(row["Timestamp"]) <= t_unix]
    return before[-1] if before else None


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]


def latency_intervals(rows: list[dict], sample_times: list[float], started_unix: float) -> list[dict]:
    intervals = []
    for t in sample_times:
        row = history_at(rows, started_unix + t)
        if row is None or row["50%"] in ("N/A", ""):
            continue
        intervals.append(
            {
                "t_s": round(t, 1),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "requests_per_s": float(row["Requests/s"]),
                "failures_per_s": float(row["Failures/s"]),
                "requests": int(row["Total Request Count"]),
                "failures": int(row["Total Failure Count"]),
            }
        )
    return intervals


def sample_while(process: subprocess.Popen, settings, interval_s: float, started: float) -> dict[str, list]:
    """Role -> [(t, MB)] every `interval_s` until the load generator exits."""
    series: dict[str, list] = {}
    while process.poll() is None:
        t = time.monotonic() - started
        for name, pid in stack_processes(settings).items():
            mb = rss_mb(pid)
            if mb is not None:
                series.setdefault(name, []).append((round(t, 1), round(mb, 1)))
        try:
            process.wait(timeout=interval_s)
        except subprocess.TimeoutExpired:
            pass
    return series


def plot(report: dict, out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # not a dependency of the project: no plot then
        return None
    fig, (memory, latency) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    for name, points in report["rss_mb"].items():
        memory.plot([t / 60 for t, _ in points], [mb for _, mb in points], label=name)
    memory.set_ylabel("RSS (MB)")
    memory.legend(fontsize="small")
    intervals = report["latency"]
    for key in ("p50_ms", "p95_ms"):
        latency.plot([i["t_s"] / 60 for i in intervals], [i[key] for i in intervals], label=key)
    latency.set_ylabel("latency (ms, last 10 s)")
    latency.set_xlabel("minutes")
    latency.legend()
    fig.savefig(out, dpi=100)
    return out


def git_head() -> str:
    command = ["git", "rev-parse", "--short", "HEAD"]
    return subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT).stdout.strip()


def run_soak(minutes: float, users: int, interval_s: float, warmup_s: float, results: Path) -> dict:
    from tools.launcher import running_stack, settings_on_free_ports

    settings = settings_on_free_ports(model_repository=str(PROJECT_ROOT / "model_repository"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    csv_prefix = results / f"soak-{stamp}-locust"
    seconds = int(minutes * 60)
    commit = git_head()  # at the start: other work may be committed while the soak runs
    with tempfile.TemporaryDirectory(prefix="imgsel-soak-") as data_dir:
        env = {"IMGSEL_DATA_DIR": data_dir}
        with running_stack(settings, extra_env=env):
            host = f"http://{settings.host}:{settings.port}"
            started, started_unix = time.monotonic(), time.time()
            load = subprocess.Popen(
                locust_command(
                    host, users, max(1, users // 4), f"{seconds}s", 30, ["--csv", str(csv_prefix), "--csv-full-history"]
                ),
                cwd=PROJECT_ROOT,
            )
            series = sample_while(load, settings, interval_s, started)
    sample_times = sorted({t for points in series.values() for t, _ in points})
    rows = read_history(Path(f"{csv_prefix}_stats_history.csv"))
    report = {
        "command": f"python -m loadtest.soak --minutes {minutes:g} --users {users} --interval {interval_s:g} "
        f"--warmup {warmup_s:g}",
        "commit": commit,
        "minutes": minutes,
        "users": users,
        "locust_exit_code": load.returncode,
        "growth_rule": f"median RSS of the last window vs the first window after {warmup_s:g} s of warm-up",
        "growth": {name: growth(points, warmup_s) for name, points in series.items()},
        "rss_mb": series,
        "latency": latency_intervals(rows, sample_times, started_unix),
    }
    final = rows[-1] if rows else {}
    report["requests"] = int(final.get("Total Request Count", 0) or 0)
    report["failures"] = int(final.get("Total Failure Count", 0) or 0)
    report["growth_ok"] = all(g is None or (g["growth_pct"] or 0) < GROWTH_GOAL_PCT for g in report["growth"].values())
    out = results / f"soak-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    report["json"] = str(out)
    report["plot"] = str(plot(report, results / f"soak-{stamp}.png") or "")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the growth baseline")
    args = parser.parse_args(argv)
    results = PROJECT_ROOT / "loadtest" / "results"
    results.mkdir(exist_ok=True)
    report = run_soak(args.minutes, args.users, args.interval, args.warmup, results)
    for name, g in sorted(report["growth"].items()):
        print(f"{name:24s} {g}")
    print(
        f"requests {report['requests']}, failures {report['failures']}, growth < {GROWTH_GOAL_PCT:g}%: "
        f"{report['growth_ok']} -> {report['json']} {report['plot']}"
    )
    return 0 if report["growth_ok"] and report["failures"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
