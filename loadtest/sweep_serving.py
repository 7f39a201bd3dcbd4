"""Serving-knob sweep of the cpu profile (the Model Analyzer idea, on our own repository): for each set of knobs
(the one `analyze` model's instances, threads, run batch and queue delay; the ensemble layout's instances and threads
of the preprocess and vision models, preferred batch sizes, queue delays), generate the model
repository, start a private stack on it and drive `/v1/select` (8-image products of 800x800 JPEGs, as `make bench`)
at each concurrency; one markdown row per set and level.

    python -m loadtest.sweep_serving [--seconds 15] [--concurrency 1 8] [--only NAME ...]

The chosen set is build_engines.repository.CpuServing's defaults (what `make repo` writes); BENCHMARKS.md "Serving
knobs" has the table and why.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from build_engines import vision
from build_engines.repository import CpuServing, generate
from loadtest.bench import IDLE_SETTLE_S, drive, stack_memory_mb
from loadtest.products import PROJECT_ROOT, benchmark_images, select_payloads
from tools.launcher import running_stack, settings_on_free_ports

BASE = CpuServing()
# The preprocess -> vision ensemble's knobs (the cpu default before the one `analyze` model, and the layout wherever a
# compliance model is served there): each variant runs with one_model off.
ENSEMBLE_VARIANTS: dict[str, dict] = {
    "as before (defaults)": {},
    "1 preprocess instance": {"preprocess_instances": 1},
    "1 preprocess instance, run batch 64 (the defaults before the idle-memory work)": {
        "preprocess_instances": 1,
        "preprocess_run_batch": 64,
    },
    "preprocess run batch 32": {"preprocess_run_batch": 32},
    "preprocess run batch 64": {"preprocess_run_batch": 64},
    "dali threads 1": {"dali_threads": 1},
    "dali threads 1, vision threads 1": {"dali_threads": 1, "vision_threads": 1},
    "1 preprocess instance, dali threads 1": {"preprocess_instances": 1, "dali_threads": 1},
    "1 preprocess instance, dali threads 3": {"preprocess_instances": 1, "dali_threads": 3},
    "vision threads 1": {"vision_threads": 1},
    "2 vision instances x 1 thread": {"vision_instances": 2, "vision_threads": 1},
    "vision run batch 64": {"vision_run_batch": 64},
    "vision preferred batches none": {"vision_preferred_batches": ()},
    "vision preferred batches 8": {"vision_preferred_batches": (8,)},
    "vision queue delay 500 us": {"vision_queue_delay_us": 500},
    "vision queue delay 8000 us": {"vision_queue_delay_us": 8000},
    "preprocess queue delay 0": {"preprocess_queue_delay_us": 0},
    "preprocess queue delay 4000 us": {"preprocess_queue_delay_us": 4000},
    "preprocess preferred batches 8": {"preprocess_preferred_batches": (8,)},
    "preprocess preferred batches 8 16": {"preprocess_preferred_batches": (8, 16)},
    "vision preferred batches 8, preprocess 8 16": {
        "vision_preferred_batches": (8,),
        "preprocess_preferred_batches": (8, 16),
    },
}
# name -> the knobs it changes from the defaults; each varies one thing (or one pair that only makes sense together).
VARIANTS: dict[str, dict] = {
    "chosen (defaults): one analyze model, 2 instances x 1 DALI + 1 onnxruntime thread": {},
    "one model, 2 threads each": {"analyze_threads": 2},
    "one model, 1 instance x 2 threads": {"analyze_instances": 1, "analyze_threads": 2},
    "one model, 3 instances": {"analyze_instances": 3},
    "one model, queue delay 1000 us": {"analyze_queue_delay_us": 1000},
    "one model, run batch 32": {"analyze_run_batch": 32},
    "one model, run batch 16": {"analyze_run_batch": 16},
    "one model, no preferred batch size (the default before 2026-12-05)": {"analyze_preferred_batches": ()},
    "one model, no dynamic batching": {"analyze_dynamic_batching": False},
    **{f"ensemble: {name}": {"one_model": False, **knobs} for name, knobs in ENSEMBLE_VARIANTS.items()},
}


def build_repository(out: Path, serving: CpuServing, backbone: Path) -> None:
    """generate() with the backbone export replaced by a copy of one export (the knobs do not touch the weights)."""
    original = vision.export_backbone
    vision.export_backbone = lambda path, weights: shutil.copy(backbone, path)
    try:
        generate("cpu", out, Path(sys.prefix), PROJECT_ROOT, serving=serving)
    finally:
        vision.export_backbone = original


def measure(repository: Path, bodies: list[bytes], concurrency: list[int], seconds: float) -> tuple[list[dict], dict]:
    """The runs at each level, and the stack's idle memory after them (bench.stack_memory_mb)."""
    settings = settings_on_free_ports(model_repository=str(repository))
    with running_stack(settings):
        url = f"http://{settings.host}:{settings.port}"
        drive(url, bodies, 2, 4.0)  # warm-up
        runs = [drive(url, bodies, level, seconds) for level in concurrency]
        time.sleep(IDLE_SETTLE_S)
        return runs, stack_memory_mb(settings)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| knobs | clients | images/s | p50 ms | p99 ms | gateway p99 ms | overhead p99 ms | failures "
        "| idle after load: PSS / RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        memory = row.get("memory_mb")
        idle = f"{memory['pss']['total']} / {memory['rss']['total']}" if memory else "-"
        for run in row["runs"]:
            lines.append(
                f"| {row['name']} | {run['concurrency']} | {run['images_per_s']} | {run['p50_ms']} | {run['p99_ms']} "
                f"| {run.get('gateway_p99_ms')} | {run.get('overhead_p99_ms')} | {run['failures']} | {idle} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--only", nargs="+", default=None, help="names of VARIANTS to run (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    files, data_note = benchmark_images(64)
    bodies = select_payloads(files, 32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="imgsel-sweep-") as scratch:
        backbone = vision.cached_backbone_export(PROJECT_ROOT / ".cache" / "bench")
        for name, changes in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            serving = dataclasses.replace(BASE, **changes)
            repository = Path(scratch) / "repository"
            build_repository(repository, serving, backbone)
            started = time.perf_counter()
            runs, memory = measure(repository, bodies, args.concurrency, args.seconds)
            rows.append({"name": name, "knobs": dataclasses.asdict(serving), "runs": runs, "memory_mb": memory})
            seconds = round(time.perf_counter() - started)
            print(json.dumps({"name": name, "runs": runs, "memory_mb": memory, "s": seconds}), flush=True)
    print(f"Data: {data_note}.\n")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"data": data_note, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
