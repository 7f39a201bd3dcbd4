"""Joint choice of the three de-duplication thresholds (pHash, edge dHash, colour chi-square) on labelled pairs, and
the cross-validated versions of it and of a single threshold.

Not training.metrics.precision_first_threshold: that one picks one score threshold (flagged when score >= t, at
midpoints between observed scores, falling back to best F1), while this sweeps a 3-D grid of distance thresholds
(duplicate when every distance <= its threshold) with a recall tolerance and a strictness tie rule, and reports
whether the precision target was reached; the chosen thresholds are what categories.toml holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from contract.categories import DedupThresholds
from evaluation.dedup.metrics import (
    DEFAULT_MIN_PRECISION,
    Metrics,
    Rule,
    best_threshold,
    confusion,
    cross_validate,
    pick_operating_point,
)
from evaluation.dedup.pairset import PairSet
from gateway.hashing import within_thresholds

PHASH_GRID = np.arange(0, 33)
EDGE_GRID = np.arange(0, 33)
CHI2_GRID = np.round(np.arange(0, 1.0 + 1e-9, 0.005), 3)


@dataclass(frozen=True)
class OperatingPoint:
    thresholds: DedupThresholds
    metrics: Metrics
    met: bool


def tune_thresholds(
    phash_distance: np.ndarray,
    edge_distance: np.ndarray,
    chi2: np.ndarray,
    labels: np.ndarray,
    min_precision: float = DEFAULT_MIN_PRECISION,
    phash_grid: np.ndarray = PHASH_GRID,
    edge_grid: np.ndarray = EDGE_GRID,
    chi2_grid: np.ndarray = CHI2_GRID,
    recall_tolerance: float = 0.0,
    rescues: DedupThresholds | None = None,
) -> OperatingPoint:
    """Joint grid sweep of the three thresholds, precision first (pick_operating_point); ties go to the stricter ones.
    `chi2`: the colour signal as the rule sees it (our_distances: the tone and framing rescues already applied with
    `rescues`' settings, which the chosen thresholds carry; None: the rescues off).

    Vectorised: each pair is counted in the cell of the strictest grid thresholds that accept it, and cumulative
    sums along the three axes give, for every grid point at once, how many positives and negatives it accepts.
    """
    labels = np.asarray(labels).astype(bool)
    grids = (np.asarray(phash_grid), np.asarray(edge_grid), np.asarray(chi2_grid, dtype=np.float64))
    values = (np.asarray(phash_distance), np.asarray(edge_distance), np.asarray(chi2, dtype=np.float64))
    # first grid index whose threshold accepts the pair (distance <= threshold); len(grid) = never accepted
    cells = tuple(np.searchsorted(grid, value, side="left") for grid, value in zip(grids, values))
    shape = tuple(len(grid) + 1 for grid in grids)
    counts = {}
    for name, mask in (("tp", labels), ("fp", ~labels)):
        histogram = np.zeros(shape, dtype=np.int64)
        np.add.at(histogram, tuple(cell[mask] for cell in cells), 1)
        counts[name] = histogram.cumsum(0).cumsum(1).cumsum(2)[:-1, :-1, :-1]
    tp, fp = counts["tp"].astype(np.float64), counts["fp"].astype(np.float64)
    n_pos = int(labels.sum())
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=tp + fp > 0)
    recall = tp / n_pos if n_pos else np.zeros_like(tp)
    # strictness: the sum of the three thresholds as fractions of their grid ranges (index order breaks exact ties)
    i, j, k = np.indices(tp.shape)
    strictness = i / max(1, tp.shape[0] - 1) + j / max(1, tp.shape[1] - 1) + k / max(1, tp.shape[2] - 1)
    flat, met = pick_operating_point(
        recall.ravel(), precision.ravel(), strictness.ravel(), min_precision, recall_tolerance
    )
    pi, di, ci = np.unravel_index(flat, tp.shape)
    tuned = {
        "phash_max_distance": int(grids[0][pi]),
        "dhash_edge_max_distance": int(grids[1][di]),
        "hsv_chi2_max": float(grids[2][ci]),
    }
    # every other setting (the rescues') carried from `rescues`; without it, DedupThresholds' defaults: off
    thresholds = DedupThresholds(**tuned) if rescues is None else replace(rescues, **tuned)
    return OperatingPoint(thresholds, confusion(labels, within_thresholds(thresholds, *values)), met)


def cv_single(distances: np.ndarray, pairs: PairSet, rule: Rule, folds: int) -> Metrics:
    return cross_validate(
        lambda train: best_threshold(distances[train], pairs.labels[train], *rule).threshold,
        lambda threshold, test: distances[test] <= threshold,
        pairs.labels,
        pairs.groups,
        folds,
    )


def cv_ensemble(
    distances: tuple, pairs: PairSet, rule: Rule, folds: int, rescues: DedupThresholds | None = None
) -> Metrics:
    return cross_validate(
        lambda train: (
            tune_thresholds(
                *(d[train] for d in distances),
                pairs.labels[train],
                rule.min_precision,
                recall_tolerance=rule.recall_tolerance,
                rescues=rescues,
            ).thresholds
        ),
        lambda t, test: within_thresholds(t, *(d[test] for d in distances)),
        pairs.labels,
        pairs.groups,
        folds,
    )
