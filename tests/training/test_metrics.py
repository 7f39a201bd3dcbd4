"""Metrics and the threshold choice shared by training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    at_threshold,
    best_f1_threshold,
    classification_report,
    metrics_where_labelled,
    precision_first_threshold,
    recall_at_fpr,
    roc_auc,
)


def test_roc_auc_and_best_f1_threshold():
    truth = np.array([0, 0, 0, 1, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), truth) == 1.0
    assert roc_auc(np.array([0.5] * 6), truth) == 0.5
    assert roc_auc(np.ones(3), np.ones(3)) is None
    assert 0.3 < best_f1_threshold(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), truth) < 0.4


def test_precision_first_takes_the_highest_recall_at_the_precision_floor():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7])
    truth = np.array([0, 0, 1, 0, 1, 1, 1, 1])  # a negative at 0.35 sits among the positives
    strict = precision_first_threshold(scores, truth, min_precision=1.0)
    assert 0.35 < strict < 0.4  # recall 4/5 without a false positive
    lenient = precision_first_threshold(scores, truth, min_precision=0.8)
    assert 0.2 < lenient < 0.3  # recall 5/5 at precision 5/6
    assert at_threshold(scores, truth, strict) == {
        "precision": 1.0,
        "recall": 0.8,
        "false_positive_rate": 0.0,
        "positives": 5,
        "negatives": 3,
    }


def test_precision_first_falls_back_to_best_f1_when_the_floor_is_out_of_reach():
    scores, truth = np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])
    assert precision_first_threshold(scores, truth, 0.99) == best_f1_threshold(scores, truth)


def test_unlabelled_rows_are_left_out_and_recall_at_fpr():
    scores = np.array([0.1, 0.9, 0.5, 0.8])
    labels = np.array([0.0, 1.0, np.nan, 1.0])
    result = metrics_where_labelled(scores, labels)
    assert result["roc_auc"] == 1.0 and result["positives"] == 2 and result["negatives"] == 1
    assert recall_at_fpr(np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 0, 1, 1]), fpr=0.0) == 1.0


def test_classification_report_confusion_and_per_class():
    report = classification_report(("a", "b", "c"), np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert report["accuracy"] == 0.75 and report["n"] == 4
    assert report["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert report["per_type"]["a"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert report["per_type"]["b"]["precision"] == pytest.approx(0.667)
    assert "c" not in report["per_type"]  # neither present nor predicted
