"""Where the time goes on the running stack: CPU seconds per image of every stack process under load, and (with
py-spy installed) the functions each process spends it in.

    python -m loadtest.profile_stack [--seconds 20] [--concurrency 4] [--py-spy /path/to/py-spy] [--samples DIR]

Starts a private stack on the cpu model repository, drives `/v1/select` with `concurrency` closed-loop clients
(8-image products of 800x800 JPEGs, as `make bench`), and reads utime+stime of each process from /proc before and
after the window (the gateway's also by thread name). With `--py-spy` (not a dependency: `pip install py-spy`), each
process is also sampled for the window (`py-spy record --format raw`, Python frames): the functions with the most
own samples are listed, and the project's functions with the most samples under them; `--samples DIR` keeps the
raw samples (PID.txt each).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from loadtest.bench import drive, ensure_repository
from loadtest.products import IMAGES_PER_PRODUCT, PROJECT_ROOT, benchmark_images, select_payloads
from loadtest.stack_processes import stack_processes
from tools.launcher import settings_on_free_ports, supervised_stack

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a /proc stat file (a process's or one thread's), in seconds."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5), after the command


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone."""
    try:
        return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime of a process's threads, summed by thread name (/proc/PID/task/TID/comm: the event loop's
    thread is the process's own name, gRPC's pollers, the default executor's workers and the rest have theirs)."""
    by_name: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        try:
            by_name[(task / "comm").read_text().strip()] += _stat_cpu_seconds(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
    return dict(by_name)


def children(parent: int) -> list[int]:
    """PIDs whose parent is `parent` (the embedded PostgreSQL's backends and workers under its postmaster)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _samples(raw: str) -> list[tuple[list[str], int]]:
    """(frames root first, count) of each line of py-spy's raw (collapsed) output."""
    samples = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def top_frames(raw: str, limit: int) -> list[tuple[str, float]]:
    """(function, share of samples) with the most own (leaf) samples in py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    for frames, count in _samples(raw):
        own[frames[-1]] += count
    total = sum(own.values())
    return [(frame, round(count / total, 3)) for frame, count in own.most_common(limit)] if total else []


# The project's own code, as py-spy names its files (the Triton stubs run the repository's copy as model.py).
PROJECT_FILES = ("(gateway/", "(preprocessing/", "(build_engines/", "(contract/", "(model.py:")


def project_frames(raw: str, limit: int) -> list[tuple[str, float]]:
    """(project function, share of samples) with the most samples anywhere under them (inclusive: the function and
    what it calls), line numbers dropped: where a process's time goes in the project's terms, which the leaves of
    top_frames (numpy, PIL, psycopg) do not say."""
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in _samples(raw):
        total += count
        functions = {frame.rsplit(":", 1)[0] + ")" for frame in frames if any(f in frame for f in PROJECT_FILES)}
        for function in functions:
            under[function] += count
    return [(frame, round(count / total, 3)) for frame, count in under.most_common(limit)] if total else []


def sample(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen:
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    command += ["--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out.with_suffix(".log").open("w"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repository", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--py-spy", default=None, help="py-spy binary: also list each process's hottest functions")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--samples", type=Path, default=None, help="keep py-spy's raw samples here (PID.txt each)")
    args = parser.parse_args(argv)

    ensure_repository(args.repository)
    files, data_note = benchmark_images(64)
    bodies = select_payloads(files, 32)
    settings = settings_on_free_ports(model_repository=str(args.repository))
    report: dict = {"data": data_note, "concurrency": args.concurrency, "repository": str(args.repository)}
    with supervised_stack(settings) as stack, tempfile.TemporaryDirectory() as temporary:
        scratch = args.samples or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        url = f"http://{settings.host}:{settings.port}"
        drive(url, bodies, 2, 5.0)  # warm-up
        processes = stack_processes(settings)
        processes["load generator"] = os.getpid()
        postmaster = stack.database.pid() if stack.database is not None else None
        if postmaster is not None:  # the embedded state store: its CPU is the service's too on this machine
            processes["postgres"] = postmaster
            processes.update({f"postgres child {pid}": pid for pid in children(postmaster)})
        samplers = {}
        if args.py_spy:
            samplers = {
                name: sample(args.py_spy, pid, args.seconds, scratch / f"{pid}.txt")
                for name, pid in processes.items()
                if name != "load generator" and not name.startswith("postgres")
            }
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        threads_before = thread_cpu_seconds(processes["gateway"])
        wall = time.perf_counter()
        result: dict = {}
        load = threading.Thread(target=lambda: result.update(drive(url, bodies, args.concurrency, args.seconds)))
        load.start()
        load.join()
        wall = time.perf_counter() - wall
        after = {name: cpu_seconds(pid) for name, pid in processes.items()}
        threads_after = thread_cpu_seconds(processes["gateway"])
        for sampler in samplers.values():
            sampler.wait(timeout=args.seconds + 30)
        images = result["products"] * IMAGES_PER_PRODUCT
        report["run"] = result
        per_image = {name: 1000 * max(0.0, after[name] - before[name]) / max(images, 1) for name in processes}
        postgres = sum(v for name, v in per_image.items() if name.startswith("postgres"))
        per_image = {name: v for name, v in per_image.items() if not name.startswith("postgres")}
        if postmaster is not None:
            per_image["postgres (all its processes)"] = postgres
        report["cpu_ms_per_image"] = {name: round(v, 2) for name, v in per_image.items()}
        report["cpu_ms_per_image"]["total (2 cores = 2000 ms/s)"] = round(sum(report["cpu_ms_per_image"].values()), 2)
        threads = {
            name: 1000 * (seconds - threads_before.get(name, 0.0)) / max(images, 1)
            for name, seconds in threads_after.items()
        }
        report["gateway_cpu_ms_per_image_by_thread"] = {
            name: round(v, 3) for name, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v > 0
        }
        report["cpu_busy_fraction"] = round(sum(after[n] - before[n] for n in processes) / (wall * os.cpu_count()), 3)
        if samplers:
            raws = {
                name: (scratch / f"{processes[name]}.txt").read_text()
                for name in samplers
                if (scratch / f"{processes[name]}.txt").is_file()
            }
            report["hottest"] = {name: top_frames(raw, args.top) for name, raw in raws.items()}
            report["under_project_functions"] = {name: project_frames(raw, args.top) for name, raw in raws.items()}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
