"""Interim classical quality head: classical measures -> scores in [0, 1], exported to ONNX like every other head.

The served `quality` model is the learned head (training/quality_heads.py, heads/quality.onnx). This classical
one is the fallback when that file is absent, and the baseline the learned head is compared with: it maps the
measures the preprocess model computes at full-ish resolution (variance of the Laplacian inside the object's box,
object box area fraction) through logistic curves in log space, giving only `blur` and `small_object` (no
placeholder score). Parameters live in `classical_quality.json`, chosen on real catalog photos (see BENCHMARKS.md,
"Interim classical quality measures").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

PARAMS_FILE = Path(__file__).with_name("classical_quality.json")
CLASSICAL_OUTPUTS = ("blur", "small_object")  # a prefix of contract.QUALITY_OUTPUTS


@dataclass(frozen=True)
class LogisticInLog10:
    """score = sigmoid(slope * (log10(threshold) - log10(value + offset))): 0.5 exactly at `threshold`."""

    threshold: float
    slope: float
    offset: float


def load_params(path: Path = PARAMS_FILE) -> dict[str, LogisticInLog10]:
    raw = json.loads(path.read_text())
    return {
        name: LogisticInLog10(**{k: float(v) for k, v in raw[name].items() if k != "note"})
        for name in CLASSICAL_OUTPUTS
    }


class ClassicalQualityHead(nn.Module):
    def __init__(self, params: dict[str, LogisticInLog10]):
        super().__init__()
        curves = [params[name] for name in CLASSICAL_OUTPUTS]
        self.register_buffer("log_threshold", torch.log10(torch.tensor([c.threshold for c in curves])))
        self.register_buffer("slope", torch.tensor([c.slope for c in curves]))
        self.register_buffer("offset", torch.tensor([c.offset for c in curves]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features columns match preprocessing.runner.FEATURE_NAMES (laplacian_variance, object_area_fraction).
        value = torch.clamp(features, min=0.0) + self.offset
        return torch.sigmoid(self.slope * (self.log_threshold - torch.log10(value)))
