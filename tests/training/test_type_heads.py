"""Type heads: the style-grouped model selection and the committed apparel head."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from contract.categories_file import load_catalog
from contract.tensors import TYPE_HEAD_INPUT
from tests.training.support import random_embeddings
from training.heads import LINEAR, HeadConfig, fit_with_mirrors, train
from training.splits import cv_fold
from training.type_heads import (
    HEADS_DIR,
    TrainingOptions,
    back_called_front,
    choose_config,
    hero_front_rate,
    may_lead,
)


def test_committed_apparel_head_matches_the_categories_file():
    path = HEADS_DIR / "type_apparel.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs = session.run(None, {TYPE_HEAD_INPUT: random_embeddings(3, 5)})[0]
    assert probs.shape == (3, len(load_catalog().get("apparel").types))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_model_selection_is_grouped_and_prefers_what_generalises():
    rng = np.random.default_rng(3)
    groups = [f"style-{i // 3}" for i in range(120)]  # three images per style, never split across folds
    assert {cv_fold(g) for g in groups} == {0, 1, 2, 3}
    x = random_embeddings(120, 4)
    y = (x[:, 0] + 0.1 * rng.normal(size=120) > 0).astype(np.int64)
    flipped = x.copy()
    candidates = (HeadConfig(weight_decay=1e-3, epochs=200), HeadConfig(hidden=32, dropout=0.5, epochs=5))
    best, table = choose_config(x, flipped, y, groups, [True, True], candidates)
    assert [row["config"] for row in table] == [c.describe() for c in candidates]
    assert best == candidates[0]  # 5 steps of an MLP cannot learn the direction; the linear head can
    assert table[0]["cv_accuracy"] > table[1]["cv_accuracy"]


def test_model_selection_falls_back_to_linear_when_no_fold_can_be_scored():
    x = random_embeddings(12, 8)
    y = np.arange(12) % 2
    best, table = choose_config(x, x, y, ["one-style"] * 12, [True, True], (HeadConfig(hidden=8, epochs=2),))
    assert best == LINEAR and table[0]["cv_accuracy"] is None


def test_hero_is_the_most_front_image_among_those_predicted_front():
    # product p1: the true front is predicted front with the highest front probability; p2: a back image wins
    products = ["p1", "p1", "p2", "p2", "p3"]
    truth = np.array([0, 1, 0, 1, 1])  # p3 has no front image: not counted
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3], [0.8, 0.2]])
    assert hero_front_rate(products, truth, probabilities, front=0) == {
        "products_with_front": 2,
        "hero_is_front": 1,
        "rate": 0.5,
        "worst_order": {"hero_is_front": 0, "rate": 0.0},  # p1's back is predicted front: it may lead
        "random_order": 0.25,  # p1: one of two may-lead images is a front; p2: the back leads
    }


TYPES = ("front", "back", "detail")


def test_the_gateway_may_put_any_predicted_front_first_unless_a_margin_sorts_them():
    probabilities = np.array(
        [
            [0.90, 0.05, 0.05],  # 0: sure front (margin 0.85)
            [0.55, 0.40, 0.05],  # 1: narrow front call (margin 0.15), in truth a back
            [0.10, 0.85, 0.05],  # 2: back
            [0.50, 0.30, 0.20],  # 3: narrow front (margin 0.20)
        ]
    )
    assert may_lead([0, 1, 2], probabilities, 0, None) == [0, 1]
    assert may_lead([0, 1, 2], probabilities, 0, (1, 0.4)) == [0]
    assert may_lead([1, 2, 3], probabilities, 0, (1, 0.4)) == [3]  # none clears: the largest margin
    assert may_lead([2], probabilities, 0, (1, 0.4)) == []
    truth = np.array([0, 1, 1, 0])
    products = ["p1", "p1", "p1", "p2"]
    without = hero_front_rate(products, truth, probabilities, 0)
    with_margin = hero_front_rate(products, truth, probabilities, 0, (1, 0.4))
    assert (without["worst_order"]["rate"], without["random_order"]) == (0.5, 0.75)
    assert (with_margin["worst_order"]["rate"], with_margin["random_order"]) == (1.0, 1.0)


def test_backs_called_front_are_counted():
    truth = np.array([0, 1, 1, 1, 2])
    predicted = np.array([0, 0, 1, 2, 0])
    assert back_called_front(TYPES, truth, predicted) == {"backs": 3, "called_front": 1, "rate": 0.3333}
    assert back_called_front(("side", "top"), truth, predicted) is None


def test_back_weight_weighs_backs_only_and_mirrors_can_be_left_out():
    labels = np.array([0, 1, 1, 2])
    assert TrainingOptions(back_weight=3.0).sample_weight(labels, back=1).tolist() == [1.0, 3.0, 3.0, 1.0]
    assert TrainingOptions(back_weight=3.0).sample_weight(labels, back=None).tolist() == [1.0] * 4
    embeddings = random_embeddings(80, 2)  # 40 originals, then their 40 "mirrors"
    y = np.arange(40) % 2
    rows = np.arange(40)
    config = HeadConfig(epochs=3)
    _, used = fit_with_mirrors(y, embeddings, rows, [True, True], config, mirrors=False)
    assert used.tolist() == rows.tolist()


def test_a_heavier_back_weight_moves_ambiguous_images_toward_back():
    rng = np.random.default_rng(0)
    x = random_embeddings(200, 6)
    y = (x[:, 0] + 0.05 * rng.normal(size=200) > 0).astype(np.int64)  # 0 front, 1 back, overlapping at the border
    plain = train(x, y, [True, True], config=HeadConfig(epochs=200))
    weighted = train(x, y, [True, True], config=HeadConfig(epochs=200), sample_weight=np.where(y == 1, 8.0, 1.0))
    border = random_embeddings(50, 7)
    border[:, 0] = 0.0
    p_plain = plain(torch.from_numpy(border)).detach().numpy()[:, 1]
    p_weighted = weighted(torch.from_numpy(border)).detach().numpy()[:, 1]
    assert p_weighted.mean() > p_plain.mean() + 0.05
    same = train(x, y, [True, True], config=HeadConfig(epochs=50), sample_weight=np.ones(200))
    reference = train(x, y, [True, True], config=HeadConfig(epochs=50))
    np.testing.assert_allclose(
        same(torch.from_numpy(border)).detach().numpy(),
        reference(torch.from_numpy(border)).detach().numpy(),
        atol=1e-6,
    )
