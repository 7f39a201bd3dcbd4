"""Operating points of the quality heads: per head, the precision-first threshold on the calibration half, chosen on
the logit scale and baked into the model as its `offset`, so the served score is 0.5 exactly at the threshold
(categories.toml compares every quality score to 0.5)."""

from __future__ import annotations

import math

import numpy as np
import torch

from contract.tensors import QUALITY_OUTPUTS
from training.metrics import precision_first_threshold
from training.quality_model import QualityHead, raw_logits

# Operating point of every head: the highest calibration recall at precision >= this (best F1 before: it flagged 2 of
# 66 untransformed test photos as blurry; 0.97 / 0.98 / 0.99 were compared, see MODELS.md).
MIN_PRECISION = 0.99


def calibrate(
    head: QualityHead, embeddings: np.ndarray, features: np.ndarray, labels: np.ndarray, min_precision: float
) -> tuple[list[float], dict[str, float]]:
    """Set `head.offset` to each head's chosen logit threshold (thresholds on the logit scale: a gap between the
    classes is split in the middle of the logits). Returns (logit offsets, thresholds as sigmoid probabilities)."""
    logits = raw_logits(head, embeddings, features)
    offsets = []
    for j in range(len(QUALITY_OUTPUTS)):
        known = ~np.isnan(labels[:, j])
        truth = labels[:, j][known].astype(int)
        offsets.append(precision_first_threshold(logits[known, j], truth, min_precision))
    with torch.no_grad():
        head.offset.copy_(torch.tensor(offsets))
    thresholds = {name: 1 / (1 + math.exp(-o)) for name, o in zip(QUALITY_OUTPUTS, offsets)}
    return offsets, thresholds
