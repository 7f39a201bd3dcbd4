"""Speed of the vision model alone in onnxruntime, float32 vs int8, with the cpu profile's session options (the
served intra-op thread count, no spinning): images/s and CPU ms per image at each batch size, on real preprocessed
benchmark images (PIXELS and QUALITY_FEATURES from preprocessing.runner).

    python -m loadtest.vision_speed [--seconds 8] [--batch 1 8 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from contract.tensors import PIXELS, QUALITY_FEATURES
from evaluation.vision_precision import build_models
from loadtest.products import benchmark_images
from preprocessing.runner import PreprocessRunner


def serving_session(path: Path, threads: int):
    """An onnxruntime session with the python-backend model's own options."""
    import onnxruntime as ort

    from evaluation.vision_runtime import serving_options

    return ort.InferenceSession(str(path), serving_options(threads), providers=["CPUExecutionProvider"])


def measure(session, feeds: dict[str, np.ndarray], batch: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms per image) over `seconds` of back-to-back runs of `batch` images."""
    chunk = {name: value[:batch] for name, value in feeds.items()}
    session.run(None, chunk)
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        session.run(None, chunk)
        done += batch
    return done / (time.perf_counter() - started), 1000 * (time.process_time() - cpu) / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    encoded, note = benchmark_images(64)
    out = PreprocessRunner(max_batch=64).run([np.frombuffer(f, np.uint8) for f in encoded])
    feeds = {PIXELS.name: out[PIXELS.name][:32], QUALITY_FEATURES.name: out[QUALITY_FEATURES.name][:32]}
    with tempfile.TemporaryDirectory(prefix="imgsel-vision-speed-") as scratch:
        for precision, path in build_models(Path(scratch)).items():  # as the repository builds them
            session = serving_session(path, args.threads)
            for batch in args.batch:
                rate, cpu_ms = measure(session, feeds, batch, args.seconds)
                row = {
                    "precision": precision,
                    "batch": batch,
                    "images_per_s": round(rate, 1),
                    "cpu_ms": round(cpu_ms, 2),
                }
                print(json.dumps(row), flush=True)
    print(f"data: {note}; onnxruntime {args.threads} intra-op threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
