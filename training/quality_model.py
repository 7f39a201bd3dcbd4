"""The learned quality head: [embedding, log10 quality features] -> standardise -> MLP -> one logit per head
(QUALITY_OUTPUTS) -> sigmoid(logit - offset), its training (full-batch Adam, masked class-balanced BCE), prediction,
ONNX export with a parity check, and the classical baseline it is compared with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from contract.tensors import EMBEDDING_DIM, QUALITY_INPUTS, QUALITY_OUTPUTS, QUALITY_SCORES
from training.quality_samples import SEED

INPUTS = QUALITY_INPUTS  # EMBEDDING, QUALITY_FEATURES
OUTPUT = QUALITY_SCORES.name
HIDDEN = 64
STEPS = 600
LR = 3e-3
# Chosen on the calibration half: hidden 0 / 32 / 64, weight decay 1e-3 / 1e-2 / 1e-1, 300 / 600 steps, dropout on
# the embedding inputs 0 / 0.5 / 0.8 (dropout is what keeps the blur head from keying on a style's embedding).
WEIGHT_DECAY = 1e-2
EMBEDDING_DROPOUT = 0.5
FEATURE_FLOOR = (1.0, 1e-3)  # log10(feature + floor): Laplacian variance, object area fraction
MAX_PARITY_ERROR = 1e-5


def log_features(features: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """log10 of the raw QUALITY_FEATURES (Laplacian variance spans decades; so does a small object's area)."""
    floor = torch.tensor(FEATURE_FLOOR, dtype=features.dtype) if floor is None else floor
    return torch.log10(torch.clamp(features, min=0.0) + floor)


def select_inputs(embedding: torch.Tensor, logs: torch.Tensor, columns: str) -> torch.Tensor:
    """The input columns a head sees: "both", "embedding" or "features"."""
    return torch.cat({"both": [embedding, logs], "embedding": [embedding], "features": [logs]}[columns], dim=1)


class QualityHead(nn.Module):
    """[embedding, log features] -> standardise -> (hidden ReLU layer) -> logits -> sigmoid(logit - offset).

    `offset` is the logit of each head's chosen threshold: the served score crosses 0.5 exactly there.
    `columns` limits the inputs (for the ablations of the report): "both", "embedding" or "features".
    """

    def __init__(
        self, hidden: int = HIDDEN, outputs: int = len(QUALITY_OUTPUTS), columns: str = "both", dropout: float = 0.0
    ):
        super().__init__()
        self.embedding_dropout = nn.Dropout(dropout)  # training only: no single embedding direction decides
        width = {"both": EMBEDDING_DIM + 2, "embedding": EMBEDDING_DIM, "features": 2}[columns]
        self.columns = columns
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("offset", torch.zeros(outputs))
        self.register_buffer("feature_floor", torch.tensor(FEATURE_FLOOR))
        self.net = (
            nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, outputs))
            if hidden
            else nn.Linear(width, outputs)
        )

    def inputs(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = select_inputs(embedding, log_features(features, self.feature_floor), self.columns)
        x = (x - self.mean) / self.std
        if self.training and self.embedding_dropout.p > 0 and self.columns != "features":
            x = torch.cat([self.embedding_dropout(x[:, :EMBEDDING_DIM]), x[:, EMBEDDING_DIM:]], dim=1)
        return x

    def logits(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(embedding, features))

    def forward(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(embedding, features) - self.offset)


def train(
    embeddings: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray,
    hidden: int = HIDDEN,
    columns: str = "both",
    steps: int = STEPS,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = SEED,
    dropout: float = EMBEDDING_DROPOUT,
) -> QualityHead:
    """Full-batch Adam on masked, class-balanced binary cross-entropy (NaN labels do not count)."""
    torch.manual_seed(seed)
    head = QualityHead(hidden, labels.shape[1], columns, dropout)
    e, f = torch.from_numpy(embeddings), torch.from_numpy(features)
    with torch.no_grad():
        x = select_inputs(e, log_features(f), columns)
        head.mean.copy_(x.mean(0))
        head.std.copy_(x.std(0).clamp(min=1e-6))
    y = torch.from_numpy(np.nan_to_num(labels, nan=0.0))
    known = torch.from_numpy(~np.isnan(labels)).float()
    positives = (y * known).sum(0)
    negatives = ((1 - y) * known).sum(0)
    # Each head's positives and negatives weigh half of that head's loss.
    weight = known * (y * (0.5 / positives.clamp(min=1)) + (1 - y) * (0.5 / negatives.clamp(min=1)))
    optimiser = torch.optim.Adam(head.parameters(), lr=LR, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (loss_fn(head.logits(e, f), y) * weight).sum()
        loss.backward()
        optimiser.step()
    return head.eval()


class SplitQualityHead(nn.Module):
    """Two trained QualityHeads served as one: every output from `base` except `own_outputs`, taken from `own`.

    The placeholder score learns from thousands of samples the other heads carry no label for (other shops' photos,
    hard negatives, degraded placeholders); through one shared hidden layer they moved the blur operating point (test
    recall 0.958 -> 0.819 at the same precision), so that head has a network of its own (training.quality_heads)."""

    def __init__(self, base: QualityHead, own: QualityHead, own_outputs: tuple[str, ...]):
        super().__init__()
        self.base, self.own = base, own
        self.register_buffer("take_own", torch.tensor([name in own_outputs for name in QUALITY_OUTPUTS]))

    @property
    def offset(self) -> torch.Tensor:
        return torch.where(self.take_own, self.own.offset, self.base.offset)

    def logits(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.where(self.take_own, self.own.logits(embedding, features), self.base.logits(embedding, features))

    def forward(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(embedding, features) - self.offset)


def predict(
    head: QualityHead | SplitQualityHead, embeddings: np.ndarray, features: np.ndarray, calibrated: bool = True
) -> np.ndarray:
    with torch.no_grad():
        e, f = torch.from_numpy(embeddings), torch.from_numpy(features)
        return (head(e, f) if calibrated else torch.sigmoid(head.logits(e, f))).numpy()


def raw_logits(head: QualityHead | SplitQualityHead, embeddings: np.ndarray, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head.logits(torch.from_numpy(embeddings), torch.from_numpy(features)).numpy()


def export(head: QualityHead | SplitQualityHead, path: Path) -> float:
    """ONNX (opset 17, one file, dynamic batch) with a parity check on fresh random inputs; returns the error."""
    from build_engines.export import export_onnx, max_parity_error

    generator = torch.Generator().manual_seed(1)
    example = (torch.randn(2, EMBEDDING_DIM, generator=generator), torch.rand(2, 2, generator=generator) * 1000)
    export_onnx(head, example, path, list(INPUTS), OUTPUT)
    fresh = (
        torch.nn.functional.normalize(torch.randn(16, EMBEDDING_DIM, generator=generator)),
        torch.rand(16, 2, generator=generator) * torch.tensor([3000.0, 1.0]),
    )
    error = max_parity_error(head, path, fresh)
    if error > MAX_PARITY_ERROR:
        raise RuntimeError(f"{path.name}: ONNX parity error {error:.2e}")
    return error


def laplacian_baseline(features: np.ndarray) -> np.ndarray:
    """The interim classical blur score (classical_quality.json: logistic in log10 of the Laplacian variance)."""
    from build_engines.quality import ClassicalQualityHead, load_params

    with torch.no_grad():
        return ClassicalQualityHead(load_params())(torch.from_numpy(features)).numpy()
