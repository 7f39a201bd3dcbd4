"""Fault runs under load (RELIABILITY.md, "Triton faults"): a private stack on free loopback ports, the locust
scenarios of loadtest/locustfile.py headless for a bounded time, and one fault injected part-way:

- `server`: SIGKILL to tritonserver;
- `stub`: SIGKILL to one python-backend model process (`--model`, default the one that decodes: `analyze` on the cpu
  default, else `preprocess`);
- `database`: SIGKILL to the embedded PostgreSQL's postmaster.

The launcher's supervisor cleans up and restarts Triton (its database watchdog restarts PostgreSQL, which recovers
from its WAL); the gateway keeps running. Reported per run: requests sent,
non-503 errors (goal 0), 503s (and any without Retry-After), the longest request (goal: under the Triton timeout, no
hung request), time from the restarted server being ready to the first 200 (goal < 10 s), and what was cleaned up.
The gateway's own rate limit is switched off for these runs: locust users do not honour Retry-After, and the 429s they
would earn while 503s come back at once are not what is measured here.

    flock /tmp/imgsel-heavy.lock nice -n 5 .venv/bin/python -m loadtest.fault_run [--faults server stub]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from build_engines.repository import decoding_model
from loadtest.products import PROJECT_ROOT
from loadtest.run_locust import locust_command
from tools.launcher import Stack, settings_on_free_ports, supervised_stack
from tools.supervisor import is_gone

HUNG_MARGIN_S = 15.0  # a request still open this long past the Triton timeout counts as hung (client timeout)


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(records: list[dict], fault_at: float, ready_at: float | None, timeout_s: float) -> dict:
    """Figures of one run from the per-request log (times are epoch seconds; `ready_at` None: never came back)."""
    records = sorted(records, key=lambda r: r["start"])
    traffic_start = records[0]["start"] if records else fault_at
    unavailable = [r for r in records if r["status"] == 503]
    errors = [r for r in records if r["status"] not in (200, 503)]
    longest = max(records, key=lambda r: r["ms"], default=None)
    ends = [(r["start"] + r["ms"] / 1000, r) for r in records]
    first_ok = min(
        (end for end, r in ends if r["status"] == 200 and ready_at is not None and end >= ready_at), default=None
    )
    return {
        "requests": len(records),
        "ok_200": sum(r["status"] == 200 for r in records),
        "unavailable_503": len(unavailable),
        "unavailable_without_retry_after": sum(not r["retry_after"] for r in unavailable),
        "non_503_errors": len(errors),
        "errors_by_kind": Counter(f"{r['status']} {r['error'] or ''}".strip() for r in errors),
        "longest_request_s": round(longest["ms"] / 1000, 2) if longest else None,
        "longest_request": None if longest is None else f"{longest['name']} -> {longest['status']}",
        "longest_503_s": round(max((r["ms"] for r in unavailable), default=0) / 1000, 3),
        "hung_requests": sum(r["ms"] / 1000 >= timeout_s + HUNG_MARGIN_S for r in records),
        "triton_timeout_s": timeout_s,
        "fault_at_s": round(fault_at - traffic_start, 1),
        "ready_again_at_s": None if ready_at is None else round(ready_at - traffic_start, 1),
        "ready_to_first_200_s": None if first_ok is None else round(first_ok - ready_at, 2),
    }


def inject(stack: Stack, fault: str, model: str) -> dict:
    """Kill the server or one of its model processes; what was killed, for the report."""
    server = stack.triton.current
    if fault == "database":
        pid = stack.database.pid()
        os.kill(pid, signal.SIGKILL)
        return {"killed": "postgres", "pid": pid}
    if fault == "server":
        return {"killed": "tritonserver", "pid": stack.triton.kill(signal.SIGKILL)}
    stub = next(s for s in stack.triton.stubs if s.model == model)
    os.kill(stub.pid, signal.SIGKILL)
    return {"killed": f"model process {model}", "pid": stub.pid, "server_pid": server.process.pid}


def fault_run(fault: str, model: str | None, users: int, seconds: int, fault_after_s: float) -> dict:
    """One run; `model`: the stub a `stub` fault kills (None: the one that decodes)."""
    repository = PROJECT_ROOT / "model_repository"
    model = model or decoding_model(repository)
    settings = settings_on_free_ports(model_repository=str(repository))
    work = Path(tempfile.mkdtemp(prefix=f"imgsel-fault-{fault}-"))
    log = work / "requests.jsonl"
    env = {"IMGSEL_DATA_DIR": str(work / "data")}
    with supervised_stack(settings, extra_env=env) as stack:
        old_prefix, old_stubs = stack.triton.shm_prefix, list(stack.triton.stubs)
        hung_after = settings.triton_timeout_s + HUNG_MARGIN_S
        locust_env = {**os.environ, "IMGSEL_LOCUST_REQUEST_LOG": str(log), "IMGSEL_LOCUST_TIMEOUT_S": str(hung_after)}
        host = f"http://{settings.host}:{settings.port}"
        locust = subprocess.Popen(
            locust_command(host, users, users, f"{seconds}s", int(settings.triton_timeout_s + HUNG_MARGIN_S + 5)),
            env=locust_env,
        )
        while not read_records(log) and locust.poll() is None:  # traffic starts after the search index is built
            time.sleep(0.2)
        time.sleep(fault_after_s)
        fault_at = time.time()
        injected = inject(stack, fault, model)
        print(f"[fault_run] {fault}: {injected}", flush=True)
        locust.wait(timeout=seconds + hung_after + 120)
        if fault == "database":
            restarted_at = [at for at in stack.database_watchdog.restarts if at > fault_at]
        else:
            restarted_at = [e.at for e in stack.triton.events if e.kind == "started" and e.at > fault_at]
        cleaned = next((e.detail for e in stack.triton.events if e.kind == "cleaned" and e.at > fault_at), None)
        events = [{"at": round(e.at - fault_at, 2), "kind": e.kind, **e.detail} for e in stack.triton.events]
    report = summarize(
        read_records(log), fault_at, restarted_at[0] if restarted_at else None, settings.triton_timeout_s
    )
    shutil.rmtree(work, ignore_errors=True)  # the request log and the run's stores: the summary is what is kept
    report |= {
        "fault": fault,
        "injected": injected,
        "cleanup": cleaned,
        "old_stubs_gone": all(is_gone(s.pid) for s in old_stubs) if fault != "database" else None,
        "old_shm_regions_left": sorted(p.name for p in Path("/dev/shm").glob(f"{old_prefix}*")),
        "supervisor_events": events,
        "locust_exit": locust.returncode,
    }
    return report


def markdown(reports: list[dict]) -> str:
    rows = [
        ("requests sent", "requests"),
        ("200", "ok_200"),
        ("503", "unavailable_503"),
        ("503 without Retry-After", "unavailable_without_retry_after"),
        ("non-503 errors (goal 0)", "non_503_errors"),
        ("longest request, s (goal < Triton timeout)", "longest_request_s"),
        ("longest 503, s", "longest_503_s"),
        ("hung requests", "hung_requests"),
        ("fault at, s into the traffic", "fault_at_s"),
        ("server ready again at, s", "ready_again_at_s"),
        ("ready to first 200, s (goal < 10)", "ready_to_first_200_s"),
        ("killed server's stubs gone", "old_stubs_gone"),
    ]
    lines = ["| | " + " | ".join(r["injected"]["killed"] for r in reports) + " |", "| --- |" + " --- |" * len(reports)]
    lines += [f"| {label} | " + " | ".join(str(r[key]) for r in reports) + " |" for label, key in rows]
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--faults", nargs="+", choices=["server", "stub", "database"], default=["server", "stub", "database"]
    )
    parser.add_argument("--model", default=None, help="the model process killed by the `stub` fault")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--fault-after", type=float, default=20.0, help="seconds into the traffic")
    args = parser.parse_args(argv)
    reports = [fault_run(f, args.model, args.users, args.seconds, args.fault_after) for f in args.faults]
    results = PROJECT_ROOT / "loadtest" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": machine(), "runs": reports}, indent=2))
    print(markdown(reports))
    print(f"written to {out}")
    return 0 if all(r["non_503_errors"] == 0 and r["ready_to_first_200_s"] is not None for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
