"""A `vision` ONNX model (build_engines/vision.py: backbone and every head in one graph) run as the cpu profile serves
it: onnxruntime with the serving session options, fed PIXELS and QUALITY_FEATURES by the production preprocessing
(preprocessing.runner.PreprocessRunner).

Used by evaluation.vision_precision (int8 vs float32 side by side) and by the `--vision PATH` option of the accuracy
evaluations (evaluation.placeholder_detection, evaluation.search_recall): their embeddings and head outputs then come
from the served model file (e.g. the int8 model of a generated cpu repository, `<repo>/analyze/1/vision.onnx`) instead
of the torch float32 backbone (training.embeddings).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contract.tensors import PIXELS, QUALITY_FEATURES, THUMB, VALID

BATCH = 32
SERVED = "served"  # the label of the one model of `analyse_with_vision`


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def serving_options(threads: int = 2):
    """The cpu profile's onnxruntime session options (build_engines/triton_python/onnx_model.py), imported rather than
    copied; that module imports the Triton stub's utilities at the top, absent outside Triton."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    from build_engines.triton_python.onnx_model import session_options

    return session_options({"ORT_THREADS": str(threads), "ORT_SPIN": "0"})


@dataclass
class Analysis:
    """Per image: `valid`, raw QUALITY_FEATURES, ORIG_SIZE, every vision output per model label, and THUMB when
    asked."""

    valid: np.ndarray
    features: np.ndarray
    sizes: np.ndarray
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    thumbs: np.ndarray | None = None


class VisionModels:
    """Vision model files (by label) in onnxruntime with the serving options, fed by the production preprocessing."""

    def __init__(self, paths: dict[str, Path], batch: int = BATCH):
        import onnxruntime as ort

        from preprocessing.runner import PreprocessRunner

        self.paths = paths
        self.batch = batch
        self.sessions = {
            p: ort.InferenceSession(str(path), serving_options(), providers=["CPUExecutionProvider"])
            for p, path in paths.items()
        }
        self.runner = PreprocessRunner(max_batch=batch)
        self.sample_feeds: dict[str, np.ndarray] | None = None  # one full batch of real images, for speed runs

    def analyse(self, files: Iterable[np.ndarray], with_thumbs: bool = False) -> Analysis:
        valid, features, sizes, thumbs = [], [], [], []
        outputs: dict[str, dict[str, list]] = {p: {} for p in self.sessions}
        for batch in batched(files, self.batch):
            out = self.runner.run(batch)
            feeds = {PIXELS.name: out[PIXELS.name], QUALITY_FEATURES.name: out[QUALITY_FEATURES.name]}
            if self.sample_feeds is None and len(batch) == self.batch:
                self.sample_feeds = feeds
            valid.append(out[VALID.name][:, 0])
            features.append(out[QUALITY_FEATURES.name])
            sizes.append(out["ORIG_SIZE"])
            if with_thumbs:
                thumbs.append(out[THUMB.name])
            for label, session in self.sessions.items():
                names = [o.name for o in session.get_outputs()]
                for name, value in zip(names, session.run(names, feeds)):
                    outputs[label].setdefault(name, []).append(value)
        return Analysis(
            np.concatenate(valid).astype(bool),
            np.concatenate(features),
            np.concatenate(sizes),
            {p: {name: np.concatenate(parts) for name, parts in by_name.items()} for p, by_name in outputs.items()},
            np.concatenate(thumbs) if with_thumbs else None,
        )


def analyse_with_vision(model: Path, files: Iterable[np.ndarray], with_thumbs: bool = False) -> Analysis:
    """Every file through the preprocessing and the one vision model `model`; its outputs under `SERVED`."""
    if not model.is_file():
        raise SystemExit(f"{model}: no vision model file (build one: python -m build_engines.repository --profile cpu)")
    return VisionModels({SERVED: model}).analyse(files, with_thumbs)
