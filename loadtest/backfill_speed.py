"""Benchmark: the catalog backfill job (Ray Data, workers calling Triton directly) against sending the same products
through POST /v1/select, on one stack, same files, same Triton.

    python -m loadtest.backfill_speed [--products 48] [--concurrency 8] [--workers 2] [--batch-size 8]

Products: `loadtest.products`' 8-image products of 800x800 JPEGs (../shared/data/catalog photos when present). The
files are written to a temporary folder; /v1/select gets them as base64 (what an HTTP client sends), the job reads
them from the folder through its manifest. Both runs go through the same started stack (Triton, gateway, embedded
PostgreSQL). Measured per mode: products/s over the wall time (for the job also over its processing window, i.e.
without Ray's start-up), and CPU seconds per product of Triton's processes and of the client side (the gateway and
this load generator for /v1/select; the job's driver, Ray and its workers for the job): steadier than wall time on
a shared machine. Prints a markdown table and writes JSON to loadtest/results/backfill_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from backfill.plan import processing_window_s
from backfill.results import read_parts
from loadtest.bench import ensure_repository
from loadtest.products import IMAGES_PER_PRODUCT, PROJECT_ROOT, benchmark_images, select_payloads
from loadtest.stack_processes import stack_processes
from tools.launcher import settings_on_free_ports, supervised_stack


def tree_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their descendants, as they stand now."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def via_select(url: str, bodies: list[bytes], concurrency: int) -> dict:
    """Every product once through /v1/select, `concurrency` clients in a closed loop."""
    queue = list(range(len(bodies)))
    lock = threading.Lock()
    failures = [0]

    def client() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    i = queue.pop()
                response = http.post("/v1/select", content=bodies[i], headers={"content-type": "application/json"})
                if response.status_code != 200:
                    with lock:
                        failures[0] += 1

    own_cpu = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall_s": time.perf_counter() - started, "client_cpu_s": time.process_time() - own_cpu,
            "failures": failures[0]}  # fmt: skip


def via_job(manifest: Path, output: Path, env: dict[str, str], args) -> dict:
    """The backfill job as a user runs it (`python -m backfill run`), its process tree's CPU sampled until it ends."""
    options = {"--output": output, "--workers": args.workers, "--batch-size": args.batch_size,
               "--concurrency": args.job_concurrency}  # fmt: skip
    command = [sys.executable, "-m", "backfill", "run", str(manifest), *(str(x) for kv in options.items() for x in kv)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen: dict[int, float] = {}  # pid -> last CPU seconds seen (workers exit before the driver does)
    workers: set[int] = set()  # the Ray actors running BackfillWorker (the rest: driver, Ray's own daemons)
    # Workers' CPU and products done when the first part appears: what follows is their steady state, without
    # start-up (imports, clients) and the first batch.
    first_part: tuple[float, int] | None = None
    while process.poll() is None:
        if first_part is None and (done := read_parts(str(output / "curate"), ["key"])) is not None:
            first_part = (sum(seen.get(pid, 0.0) for pid in workers), done.num_rows)
        try:
            for p in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
                times = p.cpu_times()
                seen[p.pid] = times.user + times.system
                if "MapWorker" in p.name() or "BackfillWorker" in " ".join(p.cmdline()):
                    workers.add(p.pid)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    report = json.loads(process.stdout.read())
    rows = read_parts(str(output / "curate")).to_pylist()
    return {"wall_s": wall, "window_s": processing_window_s(rows), "client_cpu_s": sum(seen.values()),
            "worker_cpu_s": sum(seen[pid] for pid in workers), "failures": report["dead_letter"],
            "done": report["done"], "worker_cpu_at_first_part_s": first_part[0] if first_part else None,
            "products_at_first_part": first_part[1] if first_part else None}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8, help="/v1/select clients")
    parser.add_argument("--workers", type=int, default=2, help="job: Ray workers")
    parser.add_argument("--batch-size", type=int, default=8, help="job: products per batch")
    parser.add_argument("--job-concurrency", type=int, default=4, help="job: products in flight per worker")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "loadtest" / "results" / "backfill_speed.json")
    args = parser.parse_args(argv)

    files, source = benchmark_images(args.products * IMAGES_PER_PRODUCT)
    bodies = select_payloads(files, args.products)
    repository = PROJECT_ROOT / "model_repository"
    ensure_repository(repository)
    with tempfile.TemporaryDirectory(prefix="imgsel-backfill-bench-") as scratch:
        folder = Path(scratch)
        with open(folder / "manifest.jsonl", "w") as manifest:
            for p, body in enumerate(bodies):
                images = []
                for k, image in enumerate(json.loads(body)["images"]):
                    path = folder / f"{image['id']}.jpg"
                    path.write_bytes(files[(p * IMAGES_PER_PRODUCT + k) % len(files)])
                    images.append({"id": image["id"], "path": str(path), "supplier": image["supplier"]})
                manifest.write(json.dumps({"product_id": f"bench-{p}", "category": "apparel", "images": images}) + "\n")
        settings = settings_on_free_ports(model_repository=str(repository))
        with supervised_stack(settings, {"IMGSEL_DATA_DIR": str(folder / "data")}) as stack:
            triton = [pid for name, pid in stack_processes(settings).items() if name == "tritonserver"]
            gateway = [stack.gateway.process.pid]
            before = tree_cpu_s(triton), tree_cpu_s(gateway)
            select = via_select(f"http://{settings.host}:{settings.port}", bodies, args.concurrency)
            select["triton_cpu_s"] = tree_cpu_s(triton) - before[0]
            select["client_cpu_s"] += tree_cpu_s(gateway) - before[1]
            env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSEL_")} | {
                "PYTHONPATH": str(PROJECT_ROOT),
                "RAY_USAGE_STATS_ENABLED": "0",
                "IMGSEL_TRITON_GRPC_URL": f"127.0.0.1:{settings.triton_grpc_port}",
                "IMGSEL_DATABASE_URL": stack.database_url,
                "IMGSEL_MODEL_REPOSITORY": str(repository),
            }
            before_job = tree_cpu_s(triton)
            job = via_job(folder / "manifest.jsonl", folder / "out", env, args)
            job["triton_cpu_s"] = tree_cpu_s(triton) - before_job
    n = args.products
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "data": f"{n} products x {IMAGES_PER_PRODUCT} images: {source}",
        "args": {k: str(v) for k, v in vars(args).items()},
        "select": select,
        "job": job,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['data']}; {result['machine']}\n")
    print("| mode | products/s (wall) | products/s (processing) | Triton CPU s/product | client-side CPU s/product "
          "| of which workers |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    rate = n / select["wall_s"]
    print(f"| /v1/select, {args.concurrency} clients | {rate:.2f} | {rate:.2f} | {select['triton_cpu_s'] / n:.3f} | "
          f"{select['client_cpu_s'] / n:.3f} (gateway + load generator) | - |")  # fmt: skip
    print(f"| job, {args.workers} workers x {args.job_concurrency} | {n / job['wall_s']:.2f} | "
          f"{n / job['window_s']:.2f} | {job['triton_cpu_s'] / n:.3f} | {job['client_cpu_s'] / n:.3f} (driver + Ray) "
          f"| {job['worker_cpu_s'] / n:.3f} |")  # fmt: skip
    if job["products_at_first_part"] is not None and job["products_at_first_part"] < n:
        steady = (job["worker_cpu_s"] - job["worker_cpu_at_first_part_s"]) / (n - job["products_at_first_part"])
        print(f"\njob workers' CPU per product after their first part (no start-up): {steady:.3f} s")
    return 0 if not (select["failures"] or job["failures"]) else 1


if __name__ == "__main__":
    sys.exit(main())
