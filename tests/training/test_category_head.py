"""Top-level category head: its categories-file table, the request-level prediction rule, training from a folder
layout through the production preprocessing, ONNX export, and the committed head."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from contract.categories import CategoryConfigError, CategoryHead
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_INPUT, CATEGORY_HEAD_OUTPUT, EMBEDDING_DIM
from gateway.decisions.category import predict_category
from tests.contract.test_categories import BASE_TOML, write_catalog
from tests.helpers import encode, product_photo
from training import category_head
from training.datasets import categories_from_folders
from training.heads import SoftmaxHead

HEAD_TOML = """
[category_head]
classes = ["red", "blue"]
routes = { red = "default", blue = "default" }
min_confidence = 0.6
"""


def test_category_head_table_is_parsed_in_class_order(tmp_path):
    head = load_catalog(write_catalog(tmp_path, BASE_TOML + HEAD_TOML)).category_head
    assert head == CategoryHead(
        classes=("red", "blue"), routes={"red": "default", "blue": "default"}, min_confidence=0.6
    )
    assert load_catalog(write_catalog(tmp_path, BASE_TOML)).category_head is None


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        (', blue = "default" }', " }", r"field 'routes': must map every class"),
        ('blue = "default" }', 'blue = "toaster" }', r"field 'routes.blue': 'toaster' is not a category"),
        ('["red", "blue"]', '["red", "blue", "red"]', r"field 'classes': duplicate"),
        ("min_confidence = 0.6", "min_confidence = 1.5", r"min_confidence"),
        ("min_confidence = 0.6", "", r"field 'min_confidence': missing"),
    ],
)
def test_invalid_category_head_names_the_field(tmp_path, replace, by, message):
    text = (BASE_TOML + HEAD_TOML).replace(replace, by)
    with pytest.raises(CategoryConfigError, match=message):
        load_catalog(write_catalog(tmp_path, text))


SHIPPED = load_catalog().category_head


def test_shipped_head_routes_every_class_to_a_category():
    assert SHIPPED is not None
    assert set(SHIPPED.routes) == set(SHIPPED.classes)
    assert {SHIPPED.routes[c] for c in ("fruit", "vegetables", "packages")} == {"grocery"}


def test_prediction_is_the_mean_over_the_images_routed_through_the_head():
    head = CategoryHead(
        classes=("fruit", "apparel"), routes={"fruit": "grocery", "apparel": "apparel"}, min_confidence=0.6
    )
    # One odd image (0.1 fruit) does not outvote two confident ones.
    prediction = predict_category([np.array([0.9, 0.1]), np.array([0.95, 0.05]), np.array([0.1, 0.9])], head)
    assert prediction.top_class == "fruit" and prediction.trusted and prediction.category == "grocery"
    assert prediction.confidence == pytest.approx(0.65)
    assert prediction.images == 3
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_unconfident_prediction_routes_nowhere_and_no_image_predicts_nothing():
    head = CategoryHead(
        classes=("fruit", "apparel"), routes={"fruit": "grocery", "apparel": "apparel"}, min_confidence=0.6
    )
    unsure = predict_category([np.array([0.55, 0.45])], head)
    assert unsure.top_class == "fruit" and not unsure.trusted and unsure.category is None
    assert predict_category([], head) is None
    with pytest.raises(ValueError, match="3 probabilities for 2 classes"):
        predict_category([np.array([0.2, 0.3, 0.5])], head)


def test_training_from_folders_learns_the_classes_and_exports_a_parity_checked_head(tmp_path, monkeypatch):
    """The real path: synthetic photos of two classes, DALI preprocessing, the backbone, the head, ONNX."""
    catalog = write_catalog(tmp_path, BASE_TOML + HEAD_TOML)
    monkeypatch.setenv("IMGSEL_CATEGORIES_FILE", str(catalog))
    colours = {"red": (200, 40, 40), "blue": (30, 90, 200)}
    for cls, colour in colours.items():
        for product in range(12):  # one sub-folder per product: the split unit
            folder = tmp_path / "data" / cls / f"{cls}-product-{product}"
            folder.mkdir(parents=True)
            for view in range(2):
                photo = product_photo(160, colour, seed=product * 2 + view)
                (folder / f"{view}.jpg").write_bytes(encode(photo))
    out = tmp_path / "heads"
    assert category_head.main(["--folders", str(tmp_path / "data"), "--out", str(out), "--no-cache"]) == 0
    report = json.loads((out / "category.json").read_text())
    assert report["classes"] == ["red", "blue"] and report["not_learned"] == []
    assert report["validation_images"] > 0 and report["train_images"] + report["validation_images"] == 48
    assert report["validation"]["images"]["accuracy"] >= 0.9  # colour alone separates these classes
    assert report["onnx_parity_max_abs_error"] < 1e-5
    session = ort.InferenceSession(str(out / "category.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(5, EMBEDDING_DIM)).astype(np.float32)
    probs = session.run([CATEGORY_HEAD_OUTPUT], {CATEGORY_HEAD_INPUT: x})[0]
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_folder_class_not_in_the_categories_file_is_refused(tmp_path):
    (tmp_path / "toasters").mkdir()
    (tmp_path / "toasters" / "a.jpg").write_bytes(encode(product_photo(64)))
    with pytest.raises(SystemExit, match="toasters"):
        categories_from_folders(tmp_path, SHIPPED.classes)


def test_committed_category_head_matches_the_categories_file():
    path = category_head.HEADS_DIR / "category.onnx"
    if not path.is_file():
        pytest.skip("no committed category head (train: python -m training.category_head)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(3, EMBEDDING_DIM)).astype(np.float32)
    probs = session.run(None, {CATEGORY_HEAD_INPUT: x})[0]
    assert probs.shape == (3, len(SHIPPED.classes))


def test_the_vision_model_carries_the_head_only_when_trained(tmp_path, capsys, monkeypatch):
    from build_engines import vision
    from build_engines.repository import ensemble_config, preprocess_model, vision_model

    assert all(h.output != CATEGORY_HEAD_OUTPUT for h in vision.vision_heads(tmp_path, tmp_path))  # nothing trained
    assert "fall back to `default`" in capsys.readouterr().err
    head = SoftmaxHead(len(SHIPPED.classes), [True] * len(SHIPPED.classes))
    category_head.export(head, tmp_path / "category.onnx")
    heads = vision.vision_heads(tmp_path, tmp_path)
    (spliced,) = [h for h in heads if h.output == CATEGORY_HEAD_OUTPUT]
    assert spliced.path == tmp_path / "category.onnx" and spliced.model == "category"
    config = ensemble_config([preprocess_model()], vision_model(heads, "fp32"))
    outputs = config.split("output [")[1].split("ensemble_scheduling")[0]
    assert f'name: "{CATEGORY_HEAD_OUTPUT}" data_type: TYPE_FP32 dims: [ {len(SHIPPED.classes)} ]' in outputs
    step = config.split('model_name: "vision"')[1]
    assert f'input_map {{ key: "{CATEGORY_HEAD_INPUT}"' not in step  # the head reads EMBEDDING inside the graph
    wrong = SoftmaxHead(2, [True, True])
    category_head.export(wrong, tmp_path / "category.onnx")
    with pytest.raises(ValueError, match="retrain"):
        vision.vision_heads(tmp_path, tmp_path)
