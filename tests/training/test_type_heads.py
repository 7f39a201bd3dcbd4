"""Type heads: the style-grouped model selection and the committed apparel head."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from contract.categories_file import load_catalog
from contract.tensors import TYPE_HEAD_INPUT
from tests.training.support import random_embeddings
from training.heads import LINEAR, HeadConfig
from training.splits import cv_fold
from training.type_heads import HEADS_DIR, choose_config, hero_front_rate


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
    }
