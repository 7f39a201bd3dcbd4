"""evaluation.dedup metrics and tuning: confusion counts, precision-first thresholds, the joint three-way sweep."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from contract.categories import DedupThresholds
from evaluation.dedup.metrics import Metrics, best_threshold, confusion
from evaluation.dedup.tuning import tune_thresholds
from gateway.hashing import within_thresholds


def test_metrics_on_a_hand_made_table():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    distance = np.array([0, 1, 2, 9, 2, 5, 6, 7, 8, 9])
    m = confusion(labels, distance <= 2)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 1, 5)
    assert m.precision == pytest.approx(0.75) and m.recall == pytest.approx(0.75) and m.f1 == pytest.approx(0.75)
    assert Metrics(0, 0, 4, 6).precision == 1.0 and Metrics(0, 0, 4, 6).f1 == 0.0

    # precision first: 2 would add recall but costs precision; 1 is the most recall at precision 1
    best = best_threshold(distance, labels, min_precision=0.99)
    assert best.threshold == 1 and best.met and (best.metrics.tp, best.metrics.fp) == (2, 0)
    relaxed = best_threshold(distance, labels, min_precision=0.7)
    assert relaxed.threshold == 2 and relaxed.metrics.recall == pytest.approx(0.75)
    # unreachable target: the most precise point, flagged
    worst = best_threshold(np.zeros(4), np.array([1, 0, 1, 0]), min_precision=0.99)
    assert not worst.met


def brute_force(distances, labels, min_precision, grids):
    """The rule spelled out: max recall with precision >= target, then max precision, then the strictest point."""
    best = None
    for i, j, k in itertools.product(*(range(len(g)) for g in grids)):
        t = DedupThresholds(int(grids[0][i]), int(grids[1][j]), float(grids[2][k]))
        m = confusion(labels, within_thresholds(t, *distances))
        if m.precision < min_precision:
            continue
        strictness = i / (len(grids[0]) - 1) + j / (len(grids[1]) - 1) + k / (len(grids[2]) - 1)
        key = (-m.recall, -m.precision, strictness)
        if best is None or key < best[0]:
            best = (key, t)
    return best[1]


def test_tuning_picks_the_precision_first_point():
    rng = np.random.default_rng(0)
    n = 600
    kind = rng.choice(["positive", "negative", "hard"], size=n, p=[0.5, 0.4, 0.1])
    labels = (kind == "positive").astype(np.int8)
    # hard negatives look like the positives with the larger pHash distances: a loose pHash threshold costs precision
    phash_d = np.select(
        [kind == "positive", kind == "hard"], [rng.integers(0, 10, n), rng.integers(6, 10, n)], rng.integers(4, 30, n)
    )
    edge_d = np.where(kind == "negative", rng.integers(3, 30, n), rng.integers(0, 12, n))
    chi2 = np.where(kind == "negative", rng.uniform(0.01, 0.5, n), rng.uniform(0, 0.06, n)).round(3)
    grids = (np.arange(0, 16), np.arange(0, 16), np.round(np.arange(0, 0.101, 0.01), 3))

    point = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids)
    assert point.met and point.metrics.precision >= 0.99
    assert point.thresholds == brute_force((phash_d, edge_d, chi2), labels, 0.99, grids)
    loose = confusion(labels, within_thresholds(DedupThresholds(15, 15, 0.1), phash_d, edge_d, chi2))
    assert loose.recall > point.metrics.recall and loose.precision < 0.99  # the looser point is not chosen

    # with a recall tolerance, a point that gains less than it in recall loses to the stricter thresholds
    strict = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids, recall_tolerance=0.0)
    tolerant = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids, recall_tolerance=0.05)
    assert tolerant.met and tolerant.metrics.precision >= 0.99
    assert strict.metrics.recall - 0.05 <= tolerant.metrics.recall <= strict.metrics.recall
    stricter = (
        tolerant.thresholds.phash_max_distance / 15
        + tolerant.thresholds.dhash_edge_max_distance / 15
        + tolerant.thresholds.hsv_chi2_max / 0.1
    )
    assert stricter <= (
        strict.thresholds.phash_max_distance / 15
        + strict.thresholds.dhash_edge_max_distance / 15
        + strict.thresholds.hsv_chi2_max / 0.1
    )

    # a tie in recall goes to the stricter thresholds: one clean positive at distance 0, negatives far away
    point = tune_thresholds(np.array([0, 20]), np.array([0, 20]), np.array([0.0, 0.9]), np.array([1, 0]), 0.99, *grids)
    assert point.thresholds == DedupThresholds(0, 0, 0.0) and point.metrics.recall == 1.0
