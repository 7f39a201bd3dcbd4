"""Speed of the preprocess model's work alone (preprocessing.runner.PreprocessRunner: the DALI graph plus the
classical measures), in one process, on the benchmark's 800x800 JPEGs: images/s and CPU ms per image (user + system
time of the process, all threads: steadier than wall time on a shared machine) at each batch size and DALI thread
count. Run it at two commits to compare preprocessing changes.

    python -m loadtest.preprocess_speed [--seconds 8] [--batch 8 64] [--threads 1 2] [--stages]

`--stages` also times cumulative DALI graphs (decode, then one operator more each time), so each operator's CPU cost
is the difference between two rows; fn.laplacian and the 3x3 fn.filter are both timed there.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from loadtest.products import benchmark_images
from preprocessing.runner import PreprocessRunner


def benchmark_files(count: int = 64) -> tuple[list[np.ndarray], str]:
    """The benchmark's 800x800 JPEGs as the runner takes them, and where they came from."""
    encoded, note = benchmark_images(count)
    return [np.frombuffer(f, dtype=np.uint8) for f in encoded], note


def measure(runner: PreprocessRunner, files: list[np.ndarray], batch: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms per image)."""
    runner.run(files[:batch])  # warm-up: DALI allocates on the first runs
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for start in range(0, len(files) - batch + 1, batch):
            runner.run(files[start : start + batch])
            done += batch
    return done / (time.perf_counter() - started), 1000 * (time.process_time() - cpu) / done


def stage_graphs() -> dict:
    """Cumulative graphs on the encoded input, in the order the served graph runs them."""
    from nvidia.dali import fn, types

    from preprocessing.pipeline import LAPLACIAN_KERNEL

    def decode(e):
        return fn.decoders.image(e, device="cpu", output_type=types.RGB)

    def small(e):
        return fn.resize(decode(e), resize_longer=224, antialias=True)

    def grey_512(e):
        grey = fn.color_space_conversion(decode(e), image_type=types.RGB, output_type=types.GRAY)
        return fn.resize(grey, resize_longer=512, antialias=True)

    def kernel():
        return fn.constant(fdata=[v for row in LAPLACIAN_KERNEL for v in row], shape=(3, 3), dtype=types.FLOAT)

    return {
        "decode": decode,
        "decode + resize to 224": small,
        "decode + resize to 224 + thumbnail 128 from it": lambda e: fn.resize(
            small(e), size=(128, 128), antialias=True
        ),
        "decode + resize to 512 (RGB)": lambda e: fn.resize(decode(e), resize_longer=512, antialias=True),
        "decode + grey": lambda e: fn.color_space_conversion(decode(e), image_type=types.RGB, output_type=types.GRAY),
        "decode + grey + resize to 512": grey_512,
        "... + fn.laplacian(window_size=3)": lambda e: fn.laplacian(grey_512(e), window_size=3, dtype=types.FLOAT),
        "... + fn.filter(3x3 kernel)": lambda e: fn.filter(grey_512(e), kernel(), dtype=types.FLOAT),
    }


def stage_cpu_ms(files: list[np.ndarray], graph, batch: int, seconds: float) -> float:
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch, num_threads=2, device_id=None, prefetch_queue_depth=1, exec_dynamic=True)
    def pipeline():
        return graph(fn.external_source(name="ENCODED", dtype=types.UINT8, ndim=1))

    pipe = pipeline()
    pipe.build()
    pipe.feed_input("ENCODED", files[:batch])
    pipe.run()
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for start in range(0, len(files) - batch + 1, batch):
            pipe.feed_input("ENCODED", files[start : start + batch])
            pipe.run()
            done += batch
    return 1000 * (time.process_time() - cpu) / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--stages", action="store_true", help="also the CPU ms of cumulative DALI graphs (batch 8)")
    args = parser.parse_args(argv)
    files, note = benchmark_files(64)
    rows = []
    for threads in args.threads:
        for batch in args.batch:
            runner = PreprocessRunner(max_batch=max(args.batch), threads=threads)
            rate, cpu_ms = measure(runner, files, batch, args.seconds)
            rows.append(
                {"threads": threads, "batch": batch, "images_per_s": round(rate, 1), "cpu_ms": round(cpu_ms, 2)}
            )
            print(json.dumps(rows[-1]), flush=True)
    if args.stages:
        for name, graph in stage_graphs().items():
            print(
                json.dumps({"stage": name, "cpu_ms": round(stage_cpu_ms(files, graph, 8, args.seconds), 2)}), flush=True
            )
    print(f"data: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
