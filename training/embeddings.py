"""Backbone embeddings (and the classical quality features) of images through the production preprocessing
(DALI runner -> EfficientNet-Lite0).

Training heads on the very tensors Triton feeds the backbone and the quality head keeps training and serving
consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from build_engines.backbone import EmbeddingBackbone, load_backbone
from preprocessing.runner import PreprocessRunner

BATCH = 64


@dataclass
class Analysed:
    """Per image: `embeddings` [n or 2n, D] (rows n..2n-1 mirrored when asked), `features` [n, 2] (the raw
    QUALITY_FEATURES of the preprocess model, preprocessing.runner.FEATURE_NAMES), `valid` [n], `sizes` [n, 2]
    (ORIG_SIZE: height, width)."""

    embeddings: np.ndarray
    features: np.ndarray
    valid: np.ndarray
    sizes: np.ndarray


def analyse_encoded(
    files: Iterable[np.ndarray],
    backbone: EmbeddingBackbone | None = None,
    with_flips: bool = False,
    runner: PreprocessRunner | None = None,
) -> Analysed:
    """`files`: encoded images as 1-D uint8 arrays (an iterable: generated images can be produced batch by batch)."""
    backbone = backbone or load_backbone()
    runner = runner or PreprocessRunner(max_batch=BATCH)
    plain, mirrored, features, valid, sizes = [], [], [], [], []

    def flush(batch: list[np.ndarray]) -> None:
        out = runner.run(batch)
        pixels = torch.from_numpy(out["PIXELS"])
        with torch.no_grad():
            plain.append(backbone(pixels).numpy())
            if with_flips:
                mirrored.append(backbone(torch.flip(pixels, dims=[3])).numpy())
        features.append(out["QUALITY_FEATURES"])
        valid.append(out["VALID"][:, 0])
        sizes.append(out["ORIG_SIZE"])

    batch: list[np.ndarray] = []
    for data in files:
        batch.append(data)
        if len(batch) == BATCH:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if not plain:
        empty = np.zeros((0, 2), np.float32)
        return Analysed(np.zeros((0, 0), np.float32), empty, np.zeros(0, bool), empty.astype(np.int32))
    embeddings = np.concatenate(plain + mirrored)
    return Analysed(
        embeddings.astype(np.float32), np.concatenate(features), np.concatenate(valid), np.concatenate(sizes)
    )


def embed_files(
    paths: Sequence[Path], backbone: EmbeddingBackbone | None = None, with_flips: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [n or 2n, D], valid [n]). With `with_flips`, rows n..2n-1 embed the mirrored images
    (a front stays a front when mirrored: cheap augmentation for heads)."""
    result = analyse_encoded((np.fromfile(p, dtype=np.uint8) for p in paths), backbone, with_flips)
    return result.embeddings, result.valid
