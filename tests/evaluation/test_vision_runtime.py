"""The served-model path of the evaluations (`--vision PATH`): a tiny ONNX model shaped like the fused vision model
(PIXELS + QUALITY_FEATURES -> EMBEDDING, QUALITY_SCORES, CATEGORY_PROBS) run on the production preprocessing, and what
the placeholder and search evaluations take from its outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy.special import expit as sigmoid

from contract.tensors import (
    CATEGORY_HEAD_OUTPUT,
    EMBEDDING,
    PIXELS,
    QUALITY_FEATURES,
    QUALITY_OUTPUTS,
    QUALITY_SCORES,
    THUMB,
    VALID,
)
from evaluation.placeholder_data import Item
from evaluation.placeholder_mechanisms import Signals, analyse
from evaluation.search_recall import served_embeddings
from evaluation.vision_runtime import SERVED, analyse_with_vision
from gateway.decisions.placeholders import LibraryRule
from preprocessing.runner import PreprocessRunner
from tests.helpers import corrupt_jpeg, encode, product_photo

FEATURE_WEIGHTS = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5]], np.float32)  # QUALITY_FEATURES [2] -> 3 scores
FILES = [encode(product_photo(300, colour=(40 * k, 90, 200 - 30 * k), seed=k)) for k in range(3)]


def tiny_vision_model(path, with_category: bool = True) -> None:
    """EMBEDDING = each channel's mean of PIXELS; QUALITY_SCORES = sigmoid(features @ FEATURE_WEIGHTS);
    CATEGORY_PROBS = softmax(EMBEDDING)."""
    value = helper.make_tensor_value_info
    inputs = [
        value(PIXELS.name, TensorProto.FLOAT, ["batch", 3, 224, 224]),
        value(QUALITY_FEATURES.name, TensorProto.FLOAT, ["batch", 2]),
    ]
    outputs = [
        value(EMBEDDING.name, TensorProto.FLOAT, ["batch", 3]),
        value(QUALITY_SCORES.name, TensorProto.FLOAT, ["batch", 3]),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", [PIXELS.name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], [EMBEDDING.name]),
        helper.make_node("MatMul", [QUALITY_FEATURES.name, "weights"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], [QUALITY_SCORES.name]),
    ]
    if with_category:
        outputs.append(value(CATEGORY_HEAD_OUTPUT, TensorProto.FLOAT, ["batch", 3]))
        nodes.append(helper.make_node("Softmax", [EMBEDDING.name], [CATEGORY_HEAD_OUTPUT], axis=1))
    weights = numpy_helper.from_array(FEATURE_WEIGHTS, "weights")
    graph = helper.make_graph(nodes, "vision", inputs, outputs, initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "vision.onnx"
    tiny_vision_model(path)
    return path


def preprocessed(files: list[bytes]) -> dict[str, np.ndarray]:
    return PreprocessRunner(max_batch=8).run([np.frombuffer(f, np.uint8) for f in files])


def test_the_model_gets_the_preprocessings_pixels_and_raw_quality_features(model):
    files = [*FILES, corrupt_jpeg(FILES[0])]
    result = analyse_with_vision(model, (np.frombuffer(f, np.uint8) for f in files), with_thumbs=True)
    expected = preprocessed(files)
    assert result.valid.tolist() == [True, True, True, False]
    outputs = result.outputs[SERVED]
    np.testing.assert_allclose(outputs[EMBEDDING.name], expected[PIXELS.name].mean(axis=(2, 3)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.features, expected[QUALITY_FEATURES.name])
    np.testing.assert_allclose(
        outputs[QUALITY_SCORES.name], sigmoid(expected[QUALITY_FEATURES.name] @ FEATURE_WEIGHTS), rtol=1e-5
    )
    np.testing.assert_array_equal(result.thumbs, expected[THUMB.name])
    assert expected[VALID.name][:, 0].tolist() == result.valid.tolist()


def test_a_missing_model_file_stops_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="no vision model file"):
        analyse_with_vision(tmp_path / "absent.onnx", [])


def test_placeholder_analysis_takes_the_served_placeholder_score_and_writes_no_cache(model, tmp_path):
    items = [
        Item(f"i{k}", "photo", f"catalog:s{k}", "apparel", data=np.frombuffer(f, np.uint8)) for k, f in enumerate(FILES)
    ]
    cache = tmp_path / "cache"
    analysed = analyse(items, cache, vision=model)
    features = preprocessed(FILES)[QUALITY_FEATURES.name]
    placeholder = QUALITY_OUTPUTS.index("placeholder")
    np.testing.assert_allclose(analysed["head"], sigmoid(features @ FEATURE_WEIGHTS)[:, placeholder], rtol=1e-5)
    assert analysed["embeddings"].shape == (3, 3) and analysed["thumbs"].shape == (3, 128, 128, 3)
    assert analysed["valid"].all() and not cache.exists()


def test_signals_use_the_served_score_when_the_analysis_has_one(tmp_path):
    items = [Item("lib", "library", "library:0", "apparel")]
    items += [Item(f"p{k}", "photo", f"catalog:s{k}", "apparel") for k in range(4)]
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(5, 8)).astype(np.float32)
    analysed = {
        "embeddings": embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True),
        "features": np.zeros((5, 2), np.float32),
        "thumbs": rng.integers(0, 256, size=(5, 128, 128, 3), dtype=np.uint8),
        "valid": np.ones(5, bool),
        "head": np.array([0.9, 0.1, 0.2, 0.3, 0.4], np.float32),
    }
    # --head names no file: without the served score there would be no head at all
    signals = Signals.measure(
        items, analysed, tmp_path / "absent.onnx", LibraryRule(), exemplars=2, min_votes=1, seed=0
    )
    np.testing.assert_array_equal(signals.head, analysed["head"])


def test_search_takes_the_served_category_probabilities(model, tmp_path):
    paths = []
    for k, data in enumerate(FILES):
        paths.append(tmp_path / f"{k}.jpg")
        paths[-1].write_bytes(data)
    embeddings, valid, probs = served_embeddings(paths, model)
    assert valid.all() and embeddings.dtype == np.float32
    expected = np.exp(embeddings) / np.exp(embeddings).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)


def test_search_refuses_a_model_without_the_category_head(tmp_path):
    path = tmp_path / "no-category.onnx"
    tiny_vision_model(path, with_category=False)
    (tmp_path / "a.jpg").write_bytes(FILES[0])
    with pytest.raises(SystemExit, match=CATEGORY_HEAD_OUTPUT):
        served_embeddings([tmp_path / "a.jpg"], path)
