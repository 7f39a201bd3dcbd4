"""The shared softmax head: untrained classes, learning, mirrored fitting, ONNX export parity."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from contract.tensors import TYPE_HEAD_INPUT, TYPE_HEAD_OUTPUT
from tests.training.support import random_embeddings
from training.heads import (
    MIN_EXAMPLES,
    UNTRAINED_LOGIT,
    HeadConfig,
    SoftmaxHead,
    balanced_class_weights,
    export,
    fit_with_mirrors,
    learned_classes,
    predict_probabilities,
    train,
)


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


def test_balanced_weights_give_every_present_class_the_same_total():
    labels = np.array([0, 0, 0, 1, 2, 2])
    weights = balanced_class_weights(labels, 4).numpy()
    totals = np.bincount(labels, minlength=4) * weights
    np.testing.assert_allclose(totals[:3], totals[0])
    assert weights[3] == 0.0


def test_classes_below_the_minimum_are_not_learned_and_their_rows_not_fitted():
    labels = np.array([0] * MIN_EXAMPLES + [1] * (MIN_EXAMPLES - 1))
    rows = np.arange(len(labels))
    counts, trained = learned_classes(labels, rows, 3)
    assert counts.tolist() == [MIN_EXAMPLES, MIN_EXAMPLES - 1, 0] and trained == [True, False, False]
    embeddings = np.concatenate([random_embeddings(len(labels), 3), random_embeddings(len(labels), 4)])
    head, used = fit_with_mirrors(labels, embeddings, rows, trained, HeadConfig(epochs=5))
    assert used.tolist() == list(range(MIN_EXAMPLES))
    assert head.untrained_bias.tolist() == [0.0, UNTRAINED_LOGIT, UNTRAINED_LOGIT]
    assert predict_probabilities(head, embeddings[:3]).argmax(axis=1).tolist() == [0, 0, 0]


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
