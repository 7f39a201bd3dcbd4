"""CPU cost per image of the text_overlay check, part by part, with the cpu profile's onnxruntime session options:
the preprocess model's extra TEXT_IMAGE copy (DALI, the same graph with and without it), text_detect, text_recognize
(per line and per image at the lines the images really have), and the scorer's numpy work (DB boxes, crops, CTC,
features, foreground mask). On the benchmark images (loadtest.products: catalog photos at 800x800, or synthetic
ones) and the same images with a rendered overlay (training.concepts.text_overlay, every kind in turn).

    python -m loadtest.text_overlay_speed [--images 32] [--batch 8] [--threads 2] [--detect-memory-batches 1 4 8 64]
        [--recognize-memory-batches 16 64] [--json PATH]

CPU ms (process time) are the figure to read on a shared machine; wall ms are printed beside them. Memory: the peak
resident size of a fresh process that opens text_detect as the cpu profile does (build_engines/triton_python/
onnx_model.py's session and arena) and runs one batch of each size given (the arena keeps that peak); the same for
text_recognize.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from build_engines import ocr
from build_engines.text_overlay import (
    TEXT_LINE,
    write_charset,
    write_detect_onnx,
    write_recognize_onnx,
)
from contract.tensors import ORIG_SIZE, TEXT_IMAGE, THUMB
from evaluation.vision_runtime import serving_options
from loadtest.products import benchmark_images
from preprocessing.foreground import foreground_mask
from preprocessing.runner import PreprocessRunner, object_bbox
from tools.json_output import emit
from training.concepts import OVERLAY_KINDS, text_overlay


def timed(action, repeat: int = 1) -> tuple[float, float, object]:
    """(CPU ms, wall ms) of one call of `action` (mean over `repeat` calls), and its last result."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        result = action()
    return (time.process_time() - cpu) * 1000 / repeat, (time.perf_counter() - wall) * 1000 / repeat, result


def with_overlays(files: list[bytes]) -> list[bytes]:
    out = []
    for k, data in enumerate(files):
        picture = text_overlay(Image.open(io.BytesIO(data)), np.random.default_rng(k), OVERLAY_KINDS[k % 5])
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def measure(files: list[bytes], batch: int, threads: int, scratch: Path) -> dict:
    import onnxruntime as ort

    arrays = [np.frombuffer(f, np.uint8) for f in files]
    plain, text = PreprocessRunner(max_batch=batch, threads=1), PreprocessRunner(max_batch=batch, threads=1, text=True)
    plain.run(arrays[:batch])
    text.run(arrays[:batch])
    pre_plain = [timed(lambda c=c: plain.run(arrays[c : c + batch])) for c in range(0, len(arrays), batch)]
    pre_text = [timed(lambda c=c: text.run(arrays[c : c + batch])) for c in range(0, len(arrays), batch)]
    outputs = [result for _, _, result in pre_text]
    options = serving_options(threads)
    providers = ["CPUExecutionProvider"]
    detect = ort.InferenceSession(str(write_detect_onnx(scratch / "d.onnx")), options, providers=providers)
    recognise = ort.InferenceSession(str(write_recognize_onnx(scratch / "r.onnx")), options, providers=providers)
    charset = ocr.read_charset(write_charset(scratch / "charset.txt"))
    head = ocr.load_head(Path(__file__).resolve().parents[1] / "build_engines" / "heads" / "text_overlay.json")
    detect.run(None, {TEXT_IMAGE.name: outputs[0][TEXT_IMAGE.name]})
    detect_ms, probs = [], []
    for out in outputs:
        cpu, wall, (prob,) = timed(lambda out=out: detect.run(None, {TEXT_IMAGE.name: out[TEXT_IMAGE.name]}))
        detect_ms.append((cpu, wall))
        probs.append(prob)
    line_ms, lines = [], 0

    def run_recogniser(crops):
        nonlocal lines
        lines += len(crops)
        cpu, wall, result = timed(lambda: recognise.run(None, {TEXT_LINE.name: crops}))
        line_ms.append((cpu, wall))
        return result

    total_cpu, total_wall = time.process_time(), time.perf_counter()
    scores = []
    for out, prob in zip(outputs, probs):
        masks = [foreground_mask(thumb) for thumb in out[THUMB.name]]
        objects = [object_bbox(thumb, mask) for thumb, mask in zip(out[THUMB.name], masks)]
        analysed = ocr.analyse(out[TEXT_IMAGE.name], prob, out[ORIG_SIZE.name], masks, objects, run_recogniser, charset)
        scores.extend(ocr.served_score(np.array([v for v, _ in analysed]), head))
    scorer_cpu = (time.process_time() - total_cpu) * 1000 - sum(c for c, _ in line_ms)
    scorer_wall = (time.perf_counter() - total_wall) * 1000 - sum(w for _, w in line_ms)
    n = len(files)

    def per_image(pairs):
        """Mean (CPU ms, wall ms) per image of (CPU ms, wall ms, ...) timings."""
        return {"cpu_ms": round(sum(p[0] for p in pairs) / n, 2), "wall_ms": round(sum(p[1] for p in pairs) / n, 2)}

    extra = [(t[0] - p[0], t[1] - p[1]) for t, p in zip(pre_text, pre_plain)]
    return {
        "images": n,
        "preprocess_without_text": per_image(pre_plain),
        "preprocess_extra_for_text_image": per_image(extra),
        "text_detect": per_image(detect_ms),
        "text_recognize": {**per_image(line_ms), "lines_per_image": round(lines / n, 2)},
        "scorer_numpy": {"cpu_ms": round(scorer_cpu / n, 2), "wall_ms": round(scorer_wall / n, 2)},
        "flagged": round(float((np.array(scores) >= 0.5).mean()), 3),
    }


def peak_rss_mb(model: str, batch: int, threads: int) -> float:
    """Peak RSS (MB) of a fresh process that opens `model` ("detect" or "recognize") as served on cpu and runs one
    batch of `batch`."""
    import subprocess
    import sys

    writer, tensor = {"detect": ("write_detect_onnx", TEXT_IMAGE), "recognize": ("write_recognize_onnx", TEXT_LINE)}[
        model
    ]
    code = (
        "import sys, tempfile, types, numpy as np; from pathlib import Path;"
        "sys.modules.setdefault('triton_python_backend_utils', types.ModuleType('triton_python_backend_utils'));"
        "from build_engines.triton_python.onnx_model import open_session;"
        f"from build_engines.text_overlay import {writer};"
        f"path = {writer}(Path(tempfile.mkdtemp()) / 'm.onnx');"
        f"session = open_session(str(path), {{'ORT_THREADS': '{threads}'}});"
        f"session.run(None, {{'{tensor.name}': np.zeros(({batch}, *{tensor.dims}), np.uint8)}});"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report this parent's peak.
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    return round(float(result.stdout.strip().splitlines()[-1]), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--detect-memory-batches", type=int, nargs="*", default=[1, 4, 8, 64])
    parser.add_argument("--recognize-memory-batches", type=int, nargs="*", default=[16, 64])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    files, source = benchmark_images(args.images)
    with tempfile.TemporaryDirectory(prefix="imgsel-text-speed-") as scratch:
        report = {
            "data": source,
            "batch": args.batch,
            "ort_threads": args.threads,
            "clean": measure(files, args.batch, args.threads, Path(scratch)),
            "with_overlays": measure(with_overlays(files), args.batch, args.threads, Path(scratch)),
            "text_detect_peak_rss_mb": {
                str(b): peak_rss_mb("detect", b, args.threads) for b in args.detect_memory_batches
            },
            "text_recognize_peak_rss_mb": {
                str(b): peak_rss_mb("recognize", b, args.threads) for b in args.recognize_memory_batches
            },
        }
    emit(report, args.json, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
