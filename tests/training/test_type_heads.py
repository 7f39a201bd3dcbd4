"""Type heads and the shared softmax head: split, untrained types, ONNX export parity, folder layout, model
selection, and the committed apparel head."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from contract.categories_file import load_catalog
from contract.tensors import EMBEDDING_DIM, TYPE_HEAD_INPUT, TYPE_HEAD_OUTPUT
from tests.helpers import encode, product_photo
from training.datasets import types_from_folders
from training.heads import LINEAR, HeadConfig, SoftmaxHead, export, train
from training.metrics import classification_report
from training.splits import cv_fold, is_validation
from training.type_heads import HEADS_DIR, choose_config


def random_embeddings(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_split_is_deterministic_and_holds_out_about_a_quarter():
    groups = [f"style-{i}" for i in range(400)]
    held_out = [g for g in groups if is_validation(g)]
    assert held_out == [g for g in groups if is_validation(g)]
    assert 0.18 < len(held_out) / len(groups) < 0.32


def test_untrained_types_are_never_predicted():
    rng = np.random.default_rng(0)
    x = random_embeddings(60, 0)
    y = rng.integers(0, 2, size=60)
    head = train(x, y, trained=[True, True, False], epochs=50)
    with torch.no_grad():
        probs = head(torch.from_numpy(random_embeddings(20, 1))).numpy()
    assert probs[:, 2].max() < 1e-6
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_head_learns_separable_types():
    x = random_embeddings(80, 2)
    y = (x[:, 0] > 0).astype(np.int64)  # a direction in embedding space decides the type
    head = train(x, y, trained=[True, True], epochs=300)
    with torch.no_grad():
        predicted = head(torch.from_numpy(x)).numpy().argmax(axis=1)
    assert (predicted == y).mean() > 0.95


def test_onnx_export_matches_torch_on_fresh_inputs(tmp_path):
    head = SoftmaxHead(4, [True, True, True, False])
    path = tmp_path / "type_test.onnx"
    export(head, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == TYPE_HEAD_INPUT and session.get_outputs()[0].name == TYPE_HEAD_OUTPUT
    for batch in (1, 7, 64):  # dynamic batch axis
        x = random_embeddings(batch, 10 + batch)
        with torch.no_grad():
            expected = head(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(session.run(None, {TYPE_HEAD_INPUT: x})[0], expected, atol=1e-6)


def test_folder_layout_reads_types_and_rejects_unknown_folders(tmp_path):
    for type_name in ("front", "back"):
        (tmp_path / type_name).mkdir()
        for i in range(2):
            (tmp_path / type_name / f"{type_name}{i}.jpg").write_bytes(encode(product_photo(64, seed=i)))
    data = types_from_folders(tmp_path, ("front", "back", "detail"))
    assert sorted(data.types) == ["back", "back", "front", "front"]
    (tmp_path / "sideways").mkdir()
    with pytest.raises(SystemExit, match="sideways"):
        types_from_folders(tmp_path, ("front", "back", "detail"))


def test_metrics_confusion_and_per_type():
    report = classification_report(("a", "b"), np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert report["accuracy"] == 0.75
    assert report["confusion"]["matrix"] == [[1, 1], [0, 2]]
    assert report["per_type"]["a"] == {"precision": 1.0, "recall": 0.5, "support": 2}


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


def test_mlp_head_exports_with_dropout_switched_off(tmp_path):
    head = train(
        random_embeddings(40, 6),
        np.arange(40) % 3,
        [True, True, True],
        config=HeadConfig(hidden=16, dropout=0.5, epochs=20),
    )
    path = tmp_path / "mlp.onnx"
    export(head, path)
    x = random_embeddings(9, 7)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = head(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {TYPE_HEAD_INPUT: x})[0], expected, atol=1e-6)


def test_model_selection_falls_back_to_linear_when_no_fold_can_be_scored():
    x = random_embeddings(12, 8)
    y = np.arange(12) % 2
    best, table = choose_config(x, x, y, ["one-style"] * 12, [True, True], (HeadConfig(hidden=8, epochs=2),))
    assert best == LINEAR and table[0]["cv_accuracy"] is None
