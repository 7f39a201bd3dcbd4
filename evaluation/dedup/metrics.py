"""Confusion counts, the precision-first operating-point rule, single-threshold choice and grouped cross-validation
for labelled pairs (duplicate when distance <= threshold).

training.metrics serves score heads (flagged when score >= t, thresholds at midpoints, best-F1 fallback); these pick
among observed distances with a recall tolerance and report whether the precision target was met, the rule the
joint three-threshold tuning shares (evaluation.dedup.tuning). Folds come from training.splits.fold_of.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from training.splits import fold_of

DEFAULT_MIN_PRECISION = 0.99
# Recalls this close to the best count as equal when choosing thresholds (0.005 = 8 of 1,600 duplicates): such
# differences are noise (cross-validation does not see them), while looser thresholds cost precision on new data and
# make catalog-scale candidate generation (gateway.catalog_dedup, multi-index pHash probing) much slower.
DEFAULT_RECALL_TOLERANCE = 0.005


@dataclass(frozen=True)
class Metrics:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """1.0 when nothing is called a duplicate (no wrong merge was made)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def confusion(labels: np.ndarray, predicted: np.ndarray) -> Metrics:
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return Metrics(
        tp=int((labels & predicted).sum()),
        fp=int((~labels & predicted).sum()),
        fn=int((labels & ~predicted).sum()),
        tn=int((~labels & ~predicted).sum()),
    )


class Rule(NamedTuple):
    """The precision-first operating-point rule (see `pick_operating_point`)."""

    min_precision: float = DEFAULT_MIN_PRECISION
    recall_tolerance: float = DEFAULT_RECALL_TOLERANCE

    def describe(self) -> str:
        ties = (
            f"recalls within {self.recall_tolerance:g} of the best count as ties, then the stricter thresholds"
            if self.recall_tolerance > 0
            else "ties to the stricter thresholds"
        )
        return f"highest recall with precision >= {self.min_precision:g}; {ties}"


def pick_operating_point(
    recall: np.ndarray,
    precision: np.ndarray,
    strictness: np.ndarray,
    min_precision: float,
    recall_tolerance: float = 0.0,
) -> tuple[int, bool]:
    """Flat index of the precision-first choice among the points that accept something with precision >=
    min_precision: the highest recall, then the higher precision, then the strictest thresholds. With a
    recall_tolerance, recalls within it of the best count as ties (then: strictest, higher recall, higher precision).
    met=False when no point reaches min_precision (then the most precise point that accepts something)."""
    accepts = recall > 0
    feasible = accepts & (precision >= min_precision - 1e-12)
    if feasible.any():
        best = recall[feasible].max()
        tied = feasible & (recall >= best - recall_tolerance - 1e-12)
        if recall_tolerance > 0:
            keys = (-precision, -recall, np.where(tied, strictness, np.inf))
        else:
            keys = (strictness, -precision, -np.where(tied, recall, -1.0))
        return int(np.lexsort(keys)[0]), True
    ranked_precision = np.where(accepts, precision, -1.0)
    return int(np.lexsort((strictness, -recall, -ranked_precision))[0]), False


@dataclass(frozen=True)
class SingleThreshold:
    threshold: float  # duplicate when distance <= threshold
    metrics: Metrics
    met: bool  # precision target reached


def best_threshold(
    distances: np.ndarray, labels: np.ndarray, min_precision: float, recall_tolerance: float = 0.0
) -> SingleThreshold:
    """Precision-first threshold of one distance (duplicate when distance <= threshold), over its observed values."""
    distances, labels = np.asarray(distances, dtype=np.float64), np.asarray(labels).astype(bool)
    values, inverse = np.unique(distances, return_inverse=True)
    tp = np.cumsum(np.bincount(inverse, weights=labels, minlength=len(values)))
    fp = np.cumsum(np.bincount(inverse, weights=~labels, minlength=len(values)))
    n_pos = int(labels.sum())
    # a leading "accept nothing" candidate so an unreachable target still yields a defined threshold
    thresholds = np.concatenate([[-np.inf], values])
    tp, fp = np.concatenate([[0.0], tp]), np.concatenate([[0.0], fp])
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=tp + fp > 0)
    recall = tp / n_pos if n_pos else np.zeros_like(tp)
    k, met = pick_operating_point(recall, precision, np.arange(len(thresholds)), min_precision, recall_tolerance)
    return SingleThreshold(float(thresholds[k]), confusion(labels, distances <= thresholds[k]), met)


def cross_validate(
    fit: Callable[[np.ndarray], object],
    predict: Callable[[object, np.ndarray], np.ndarray],
    labels: np.ndarray,
    groups: Sequence[str],
    folds: int = 5,
) -> Metrics:
    """Pooled held-out metrics: thresholds fitted on the other folds, applied to each fold in turn."""
    fold = fold_of(groups, folds)
    predicted = np.zeros(len(labels), dtype=bool)
    for k in range(folds):
        test = fold == k
        if test.any():
            predicted[test] = predict(fit(~test), test)
    return confusion(labels, predicted)
