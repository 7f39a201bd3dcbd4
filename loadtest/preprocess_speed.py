"""Speed of the preprocess model's work alone (preprocessing.runner.PreprocessRunner: the DALI graph plus the
classical measures), in one process, on the benchmark's 800x800 JPEGs: images/s and CPU ms per image (user + system
time of the process, all threads: steadier than wall time on a shared machine) at each batch size and DALI thread
count. Run it at two commits to compare preprocessing changes.

    python -m loadtest.preprocess_speed [--seconds 8] [--batch 8 64] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from loadtest.products import benchmark_images
from preprocessing.runner import PreprocessRunner


def measure(runner: PreprocessRunner, files: list[np.ndarray], batch: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms per image)."""
    runner.run(files[:batch])  # warm-up: DALI allocates on the first runs
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for start in range(0, len(files) - batch + 1, batch):
            runner.run(files[start : start + batch])
            done += batch
    return done / (time.perf_counter() - started), 1000 * (time.process_time() - cpu) / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    args = parser.parse_args(argv)
    encoded, note = benchmark_images(64)
    files = [np.frombuffer(f, dtype=np.uint8) for f in encoded]
    rows = []
    for threads in args.threads:
        for batch in args.batch:
            runner = PreprocessRunner(max_batch=max(args.batch), threads=threads)
            rate, cpu_ms = measure(runner, files, batch, args.seconds)
            rows.append(
                {"threads": threads, "batch": batch, "images_per_s": round(rate, 1), "cpu_ms": round(cpu_ms, 2)}
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"data: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
