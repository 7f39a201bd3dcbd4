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
from contract.tensors import PIXELS, QUALITY_FEATURES, THUMB, VALID
from preprocessing.runner import PreprocessRunner

BATCH = 64


@dataclass
class Analysed:
    """Per image: `embeddings` [n or 2n, D] (rows n..2n-1 mirrored when asked), `features` [n, 2] (the raw
    QUALITY_FEATURES of the preprocess model, preprocessing.runner.FEATURE_NAMES), `valid` [n], `sizes` [n, 2]
    (ORIG_SIZE: height, width), `thumbs` [n, 128, 128, 3] (THUMB, for hashing) when asked."""

    embeddings: np.ndarray
    features: np.ndarray
    valid: np.ndarray
    sizes: np.ndarray
    thumbs: np.ndarray | None = None


def analyse_encoded(
    files: Iterable[np.ndarray],
    backbone: EmbeddingBackbone | None = None,
    with_flips: bool = False,
    runner: PreprocessRunner | None = None,
    batch_size: int = BATCH,
    with_thumbs: bool = False,
) -> Analysed:
    """`files`: encoded images as 1-D uint8 arrays (an iterable: generated images can be produced batch by batch),
    run through the preprocess model and the backbone `batch_size` at a time."""
    backbone = backbone or load_backbone()
    runner = runner or PreprocessRunner(max_batch=batch_size)
    plain, mirrored, features, valid, sizes, thumbs = [], [], [], [], [], []

    def flush(batch: list[np.ndarray]) -> None:
        out = runner.run(batch)
        pixels = torch.from_numpy(out[PIXELS.name])
        with torch.no_grad():
            plain.append(backbone(pixels).numpy())
            if with_flips:
                mirrored.append(backbone(torch.flip(pixels, dims=[3])).numpy())
        features.append(out[QUALITY_FEATURES.name])
        valid.append(out[VALID.name][:, 0])
        sizes.append(out["ORIG_SIZE"])
        if with_thumbs:
            thumbs.append(out[THUMB.name])

    batch: list[np.ndarray] = []
    for data in files:
        batch.append(data)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if not plain:
        empty = np.zeros((0, 2), np.float32)
        return Analysed(np.zeros((0, 0), np.float32), empty, np.zeros(0, bool), empty.astype(np.int32))
    embeddings = np.concatenate(plain + mirrored)
    return Analysed(
        embeddings.astype(np.float32),
        np.concatenate(features),
        np.concatenate(valid),
        np.concatenate(sizes),
        np.concatenate(thumbs) if with_thumbs else None,
    )


def embed_files(
    paths: Sequence[Path], backbone: EmbeddingBackbone | None = None, with_flips: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [n or 2n, D], valid [n]). With `with_flips`, rows n..2n-1 embed the mirrored images
    (a front stays a front when mirrored: cheap augmentation for heads)."""
    result = analyse_encoded((np.fromfile(p, dtype=np.uint8) for p in paths), backbone, with_flips)
    return result.embeddings, result.valid


def embed_decodable(paths: Sequence[Path]) -> np.ndarray:
    """Embeddings [2n, D] of training images and their mirrors (rows n..2n-1); refuses undecodable images."""
    embeddings, valid = embed_files(paths, with_flips=True)
    require_decodable(paths, valid)
    return embeddings


def require_decodable(paths: Sequence[Path], valid: np.ndarray) -> None:
    if not valid.all():
        bad = [str(paths[i]) for i in np.flatnonzero(~valid)]
        raise SystemExit(f"undecodable training images: {bad[:5]}")
