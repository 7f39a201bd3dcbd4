"""The quality head: ONNX parity, the offset that puts the threshold at 0.5, training on features with unlabelled
rows, and the precision-first calibration."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from contract.tensors import QUALITY_INPUTS, QUALITY_OUTPUTS
from tests.training.support import random_quality_inputs as random_inputs
from training.metrics import at_threshold, roc_auc
from training.quality_calibration import calibrate
from training.quality_model import INPUTS, OUTPUT, QualityHead, export, predict, train


def test_onnx_export_matches_torch_on_fresh_inputs(tmp_path):
    torch.manual_seed(0)
    head = QualityHead()
    with torch.no_grad():
        head.mean.normal_(0, 0.1)
        head.std.uniform_(0.5, 2.0)
        head.offset.copy_(torch.tensor([0.3, -1.0, 2.0]))
    path = tmp_path / "quality.onnx"
    export(head, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert tuple(i.name for i in session.get_inputs()) == INPUTS == QUALITY_INPUTS
    assert session.get_outputs()[0].name == OUTPUT
    for batch in (1, 7, 64):  # dynamic batch axis
        embedding, features = random_inputs(batch, 100 + batch)
        expected = predict(head, embedding, features)
        got = session.run(None, {"EMBEDDING": embedding, "QUALITY_FEATURES": features})[0]
        assert got.shape == (batch, len(QUALITY_OUTPUTS))
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_offset_makes_the_chosen_threshold_score_one_half():
    head = QualityHead(hidden=0)
    embedding, features = random_inputs(5, 3)
    raw = predict(head, embedding, features, calibrated=False)
    threshold = float(raw[2, 1])
    with torch.no_grad():
        head.offset[1] = math.log(threshold / (1 - threshold))
    assert predict(head, embedding, features)[2, 1] == pytest.approx(0.5, abs=1e-5)


def test_training_uses_features_and_ignores_unlabelled_rows():
    embedding, features = random_inputs(200, 4)
    labels = np.full((200, 3), np.nan, np.float32)
    labels[:, 0] = features[:, 0] < 1000  # "blurry" = low Laplacian variance
    labels[:, 2] = embedding[:, 0] > 0
    head = train(embedding, features, labels, steps=150)
    scores = predict(head, embedding, features, calibrated=False)
    assert roc_auc(scores[:, 0], labels[:, 0]) > 0.97 and roc_auc(scores[:, 2], labels[:, 2]) > 0.9


def test_calibration_puts_each_head_at_its_precision_floor():
    embedding, features = random_inputs(300, 5)
    labels = np.full((300, 3), np.nan, np.float32)
    labels[:, 0] = features[:, 0] < 1000
    labels[:, 1] = features[:, 1] < 0.3
    labels[:, 2] = features[:, 1] > 0.8
    head = train(embedding[:200], features[:200], labels[:200], hidden=0, columns="features", steps=300)
    offsets, thresholds = calibrate(head, embedding[200:], features[200:], labels[200:], min_precision=0.9)
    assert torch.allclose(head.offset, torch.tensor(offsets))
    assert list(thresholds) == list(QUALITY_OUTPUTS)
    scores = predict(head, embedding[200:], features[200:])
    for j in range(3):
        assert at_threshold(scores[:, j], labels[200:, j].astype(int), 0.5)["precision"] >= 0.9
