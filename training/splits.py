"""Every data split, in one place. Each rule is deterministic from a group name (a style, a product), so a group never
straddles train and held-out data and the split is the same on every machine and run.

- `is_validation`: 25% of groups held out (training vs validation) for every head and the backbone fine-tune.
- `role_of`: validation groups halved again into calibration (thresholds) and test (every reported number).
- `cv_fold`: k-fold assignment for cross-validation over training groups (type-head shape choice).
- `fold_of`: seeded k-fold assignment for labelled-pair evaluations (de-duplication CV).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

VALIDATION_FRACTION = 0.25
TEST_SALT = "imgsel-quality-test:"
CV_FOLDS = 4
SPLIT_SALT = "imgsel-validation-split:"


def is_validation(group: str) -> bool:
    """Deterministic split by group name (stable across machines and runs). Salted: the development catalog's style
    names all have an unsalted sha256 prefix above 0.4 (the set looks pre-filtered by that rule), so an unsalted
    split would put nothing in validation."""
    digest = int(hashlib.sha256((SPLIT_SALT + group).encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < VALIDATION_FRACTION


def role_of(group: str) -> str:
    if not is_validation(group):
        return "train"
    digest = int(hashlib.sha256((TEST_SALT + group).encode()).hexdigest()[:8], 16)
    return "test" if digest / 0xFFFFFFFF < 0.5 else "calibration"


def cv_fold(group: str, folds: int = CV_FOLDS) -> int:
    return int(hashlib.sha256(f"imgsel-type-cv:{group}".encode()).hexdigest()[:8], 16) % folds


def fold_of(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold per pair; all pairs of one group (source product) share a fold."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_by_group = {group: int(order[k]) % folds for k, group in enumerate(unique)}
    return np.array([fold_by_group[group] for group in groups])
