"""The small softmax head on the backbone embedding that the type heads and the category head share: its shape
(`HeadConfig`), the module, full-batch training on class-balanced cross-entropy, fitting on labelled rows plus their
mirrored copies, and ONNX export with a parity check.

Classes with fewer than MIN_EXAMPLES training images are not learned: their logit is pinned at UNTRAINED_LOGIT, so
the head never predicts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from contract.tensors import EMBEDDING_DIM, TYPE_HEAD_INPUT, TYPE_HEAD_OUTPUT

SEED = 0
MIN_EXAMPLES = 8
UNTRAINED_LOGIT = -30.0  # softmax gives such a class ~1e-13: never predicted
MAX_PARITY_ERROR = 1e-5


@dataclass(frozen=True)
class HeadConfig:
    """Shape and training of a head: `hidden` 0 is a softmax layer on the embedding, else one hidden ReLU layer with
    dropout on its input and on the embedding."""

    hidden: int = 0
    dropout: float = 0.0
    weight_decay: float = 1e-3
    epochs: int = 400

    @property
    def lr(self) -> float:
        return 0.01 if self.hidden == 0 else 3e-3

    def describe(self) -> str:
        shape = "linear" if self.hidden == 0 else f"MLP {self.hidden}, dropout {self.dropout:g}"
        return f"{shape}, weight decay {self.weight_decay:g}, {self.epochs} steps"


LINEAR = HeadConfig()


class SoftmaxHead(nn.Module):
    """Embedding -> class probabilities; classes not `trained` get a constant, very low logit."""

    def __init__(self, n_classes: int, trained: list[bool], config: HeadConfig = LINEAR):
        super().__init__()
        if config.hidden == 0:
            self.body = nn.Linear(EMBEDDING_DIM, n_classes)
        else:
            self.body = nn.Sequential(
                nn.Dropout(config.dropout),
                nn.Linear(EMBEDDING_DIM, config.hidden),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, n_classes),
            )
        self.register_buffer("untrained_bias", torch.tensor([0.0 if t else UNTRAINED_LOGIT for t in trained]))
        self.register_buffer("trained_mask", torch.tensor([1.0 if t else 0.0 for t in trained]))

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.body(embedding) * self.trained_mask + self.untrained_bias

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(embedding), dim=1)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Cross-entropy weights that give every present class the same total weight (absent classes 0)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float32)
    return torch.tensor(
        np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0), dtype=torch.float32
    )


def train(
    x: np.ndarray,
    y: np.ndarray,
    trained: list[bool],
    epochs: int | None = None,
    weight_decay: float | None = None,
    config: HeadConfig = LINEAR,
    sample_weight: np.ndarray | None = None,
) -> SoftmaxHead:
    """Full-batch Adam on class-balanced cross-entropy (the classes are very unequal). `epochs` and `weight_decay`
    override the config's. `sample_weight` (one per row, default 1) multiplies each row's class-balanced weight
    (hard-negative mining, per-class costs); the loss stays a weighted mean."""
    overrides = {k: v for k, v in (("epochs", epochs), ("weight_decay", weight_decay)) if v is not None}
    config = HeadConfig(**{**config.__dict__, **overrides})
    torch.manual_seed(SEED)
    head = SoftmaxHead(len(trained), trained, config)
    class_weight = balanced_class_weights(y, len(trained))
    row_weight = class_weight[torch.from_numpy(y)]
    if sample_weight is not None:
        row_weight = row_weight * torch.as_tensor(sample_weight, dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    features, targets = torch.from_numpy(x), torch.from_numpy(y)
    head.train()
    for _ in range(config.epochs):
        optimiser.zero_grad()
        loss = (loss_fn(head.logits(features), targets) * row_weight).sum() / row_weight.sum()
        loss.backward()
        optimiser.step()
    return head.eval()


def learned_classes(labels: np.ndarray, rows: np.ndarray, n_classes: int) -> tuple[np.ndarray, list[bool]]:
    """(training images per class, whether each class has enough of them to be learned)."""
    counts = np.bincount(labels[rows], minlength=n_classes)
    return counts, [bool(c >= MIN_EXAMPLES) for c in counts]


def fit_with_mirrors(
    labels: np.ndarray,
    embeddings: np.ndarray,
    rows: np.ndarray,
    trained: list[bool],
    config: HeadConfig = LINEAR,
    mirrors: bool = True,
    sample_weight: np.ndarray | None = None,
) -> tuple[SoftmaxHead, np.ndarray]:
    """Train on the `rows` of learned classes and (`mirrors`) their mirrored copies (`embeddings` holds n originals,
    then their n mirrors). `sample_weight`: one weight per image (all n), a mirror weighs what its original does.
    Returns (head, the rows used)."""
    n = len(embeddings) // 2
    keep = rows[np.array([trained[labels[i]] for i in rows], dtype=bool)]
    copies = [keep, n + keep] if mirrors else [keep]
    x = np.concatenate([embeddings[c] for c in copies])
    y = np.concatenate([labels[keep]] * len(copies))
    w = None if sample_weight is None else np.concatenate([sample_weight[keep]] * len(copies))
    return train(x, y, trained, config=config, sample_weight=w), keep


def predict_probabilities(head: SoftmaxHead, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(x)).numpy()


def export(
    head: SoftmaxHead, path: Path, input_name: str = TYPE_HEAD_INPUT, output_name: str = TYPE_HEAD_OUTPUT
) -> float:
    """ONNX of a head on the embedding, dynamic batch axis; returns the torch/onnxruntime parity error on fresh
    random unit embeddings (must be < MAX_PARITY_ERROR)."""
    from build_engines.export import export_onnx, max_parity_error

    example = torch.nn.functional.normalize(torch.randn(4, EMBEDDING_DIM, generator=torch.Generator().manual_seed(1)))
    export_onnx(head, example, path, input_name, output_name)
    error = max_parity_error(head, path, example)
    if error > MAX_PARITY_ERROR:
        raise RuntimeError(f"{path.name}: ONNX parity error {error:.2e}")
    return error
