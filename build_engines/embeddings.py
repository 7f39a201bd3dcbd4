"""Backbone embeddings of image files through the production preprocessing (DALI runner -> EfficientNet-Lite0).

Training heads on the very tensors Triton feeds the backbone keeps training and serving consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from build_engines.backbone import EmbeddingBackbone, load_backbone
from preprocessing.runner import PreprocessRunner

BATCH = 64


def embed_files(
    paths: Sequence[Path], backbone: EmbeddingBackbone | None = None, with_flips: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [n or 2n, D], valid [n]). With `with_flips`, rows n..2n-1 embed the mirrored images
    (a front stays a front when mirrored: cheap augmentation for heads)."""
    backbone = backbone or load_backbone()
    runner = PreprocessRunner(max_batch=BATCH)
    plain, mirrored, valid = [], [], []
    for start in range(0, len(paths), BATCH):
        files = [np.fromfile(p, dtype=np.uint8) for p in paths[start : start + BATCH]]
        out = runner.run(files)
        pixels = torch.from_numpy(out["PIXELS"])
        with torch.no_grad():
            plain.append(backbone(pixels).numpy())
            if with_flips:
                mirrored.append(backbone(torch.flip(pixels, dims=[3])).numpy())
        valid.append(out["VALID"][:, 0])
    embeddings = np.concatenate(plain + mirrored) if with_flips else np.concatenate(plain)
    return embeddings.astype(np.float32), np.concatenate(valid)
