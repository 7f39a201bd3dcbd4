"""The loop a user could write instead of the service, and a Pillow decode floor, on the benchmark's files: what the
service's images/s is compared with (issue #13).

- naive loop: per image, Pillow decode + resize to 224x224 + normalise (ImageNet mean/std, CHW float32), this
  project's backbone ONNX in onnxruntime (1 thread, batch 1), imagehash pHash + dHash on a 128 px thumbnail of the
  decoded image; one process per core (multiprocessing), no server, no batching, nothing shared.
- Pillow floor: Pillow decode + resize to 224x224 alone, the same processes.

    python -m loadtest.naive_loop [--seconds 20] [--processes 2] [--model PATH]

The model is the project's float32 backbone ONNX (EfficientNet-Lite0 with the committed fine-tune, exported once into
.cache/bench/, the file the repository served as `backbone` before issue #13), as the issue defines the reference;
`--model` takes another, e.g. model_repository/analyze/1/vision.onnx (the served int8 backbone fused with the heads: its
4-D input takes the pixels, any other input zeros; only the embedding is asked for). `loadtest.bench` runs both rows
after its stack has stopped, on the same files.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from loadtest.products import PROJECT_ROOT, benchmark_images

SIDE = 224
THUMB_SIDE = 128
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
STAGES = ("pillow_floor", "naive_loop", "service_work")
WARM_UP_IMAGES = 4
SERVICE_BATCH = 8  # one product's images


def default_model() -> Path:
    """The project's float32 backbone ONNX, exported once per weights into .cache/bench/."""
    from build_engines.vision import cached_backbone_export

    return cached_backbone_export(PROJECT_ROOT / ".cache" / "bench")


def decode_resize(data: bytes) -> tuple[Image.Image, Image.Image]:
    """The decoded RGB image and its 224x224 resize (Pillow's default filter, as a plain `resize` call)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return image, image.resize((SIDE, SIDE))


class NaiveAnalyzer:
    """One image at a time: embedding from the backbone, pHash and dHash of a thumbnail."""

    def __init__(self, model: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        self.pixels_input = next(i.name for i in inputs if len(i.shape) == 4)
        # A fused model's other inputs (the quality head's features): zeros, batch 1; their heads cost next to nothing.
        self.extra = {
            i.name: np.zeros([1] + [d if isinstance(d, int) else 1 for d in i.shape[1:]], np.float32)
            for i in inputs
            if i.name != self.pixels_input
        }
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = ["EMBEDDING"] if "EMBEDDING" in names else names[:1]

    def __call__(self, data: bytes) -> tuple[np.ndarray, object, object]:
        import imagehash

        image, small = decode_resize(data)
        pixels = (np.asarray(small, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        batch = np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])
        (embedding,) = self.session.run(self.outputs, {self.pixels_input: batch, **self.extra})
        thumb = image.resize((THUMB_SIDE, THUMB_SIDE))
        return embedding[0], imagehash.phash(thumb), imagehash.dhash(thumb)


class ServiceWork:
    """The service's per-image work in one process: the preprocess runner, then the served vision model on its
    outputs (every head computed, as served), a batch of files at a time."""

    def __init__(self, vision: Path):
        import onnxruntime as ort

        from preprocessing.runner import PreprocessRunner

        self.runner = PreprocessRunner(max_batch=SERVICE_BATCH, threads=1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(vision), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: list[bytes]) -> list[np.ndarray]:
        outputs = self.runner.run([np.frombuffer(data, np.uint8) for data in batch])
        return self.session.run(None, {name: outputs[name] for name in self.inputs})


def served_vision_model(repository: Path = PROJECT_ROOT / "model_repository") -> Path:
    """The vision ONNX a generated model repository serves."""
    from build_engines.repository import vision_onnx

    return vision_onnx(repository)


def work_function(stage: str, model: Path | None) -> tuple[Callable[[list[bytes]], object], int]:
    """(what one step does to a list of files, how many files a step takes)."""
    if stage == "pillow_floor":
        return (lambda batch: [decode_resize(data) for data in batch]), 1
    if stage == "naive_loop":
        analyze = NaiveAnalyzer(model)
        return (lambda batch: [analyze(data) for data in batch]), 1
    if stage == "service_work":
        return ServiceWork(model or served_vision_model()), SERVICE_BATCH
    raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")


def _worker(stage: str, model: Path | None, files: list[bytes], seconds: float, start, results) -> None:
    """One process: load, warm up, wait for the others, then process files in a loop for `seconds`."""
    work, batch = work_function(stage, model)
    for k in range(0, WARM_UP_IMAGES, batch):
        work([files[(k + b) % len(files)] for b in range(batch)])
    start.wait()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work([files[(done + b) % len(files)] for b in range(batch)])
        done += batch
    results.put((done, time.perf_counter() - started))


def measure(stage: str, files: list[bytes], seconds: float, processes: int = 2, model: Path | None = None) -> float:
    """Images/s of `stage` in `processes` processes together (spawned: nothing inherited from the caller's threads)."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_worker, args=(stage, model, files, seconds, start, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=seconds + 600) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(done / elapsed for done, elapsed in counts)


def reference_rows(
    files: list[bytes], seconds: float, processes: int = 2, model: Path | None = None, vision: Path | None = None
) -> dict:
    """The rows on `files`: images/s of the Pillow floor, of the naive loop and of the service's work in-process
    (`vision`: the served vision ONNX, default the model repository's), and what they ran."""
    model = model or default_model()
    vision = vision or served_vision_model()
    return {
        "processes": processes,
        "model": _shown(model),
        "pillow_floor_images_per_s": round(measure("pillow_floor", files, seconds, processes), 1),
        "naive_loop_images_per_s": round(measure("naive_loop", files, seconds, processes, model), 1),
        "vision": _shown(vision),
        "service_work_images_per_s": round(measure("service_work", files, seconds, processes, vision), 1),
    }


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path)


def markdown(rows: dict) -> str:
    n = rows["processes"]
    lines = [
        f"Pillow decode + resize to 224, {n} processes: {rows['pillow_floor_images_per_s']} images/s.",
        f"Naive loop (Pillow decode + resize 224 + ImageNet normalise, `{rows['model']}` in onnxruntime with 1 "
        f"thread at batch 1, imagehash pHash + dHash on a 128 px thumbnail; {n} processes, no server): "
        f"{rows['naive_loop_images_per_s']} images/s.",
    ]
    if "service_work_images_per_s" in rows:  # reports from before the row was measured have none
        lines.append(
            f"The service's own work in-process (the preprocess runner with 1 DALI thread, `{rows['vision']}` with 1 "
            f"thread, batches of {SERVICE_BATCH}; {n} processes, no server): {rows['service_work_images_per_s']} "
            "images/s, the ceiling of the service's throughput here."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="per row")
    parser.add_argument("--processes", type=int, default=2, help="one per core (the benchmark machine has 2)")
    parser.add_argument("--model", type=Path, default=None, help="backbone ONNX (default: the model repository's)")
    parser.add_argument("--images", type=int, default=64, help="benchmark images (8-image products' files)")
    args = parser.parse_args(argv)

    files, data_note = benchmark_images(args.images)
    rows = reference_rows(files, args.seconds, args.processes, args.model)
    rows["machine"], rows["data"] = f"{os.cpu_count()} cores", data_note
    print(json.dumps(rows), flush=True)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
