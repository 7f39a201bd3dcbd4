"""The data splits: deterministic by group name, salted, about the intended shares."""

from __future__ import annotations

import numpy as np

from training.splits import CV_FOLDS, cv_fold, fold_of, is_validation, role_of


def test_split_is_deterministic_and_holds_out_about_a_quarter():
    groups = [f"style-{i}" for i in range(400)]
    held_out = [g for g in groups if is_validation(g)]
    assert held_out == [g for g in groups if is_validation(g)]
    assert 0.18 < len(held_out) / len(groups) < 0.32


def test_validation_is_halved_into_calibration_and_test():
    roles = [role_of(f"catalog:style-{i}") for i in range(800)]
    assert roles == [role_of(f"catalog:style-{i}") for i in range(800)]
    assert 0.08 < roles.count("test") / 800 < 0.17
    assert 0.08 < roles.count("calibration") / 800 < 0.17
    assert all((role == "train") == (not is_validation(f"catalog:style-{i}")) for i, role in enumerate(roles))


def test_folds_keep_a_group_together():
    assert {cv_fold(f"style-{i}") for i in range(40)} == set(range(CV_FOLDS))
    groups = ["a", "a", "b", "c", "c", "c"]
    folds = fold_of(groups, folds=2, seed=0)
    assert folds[0] == folds[1] and folds[3] == folds[4] == folds[5]
    assert np.array_equal(folds, fold_of(groups, folds=2, seed=0))
