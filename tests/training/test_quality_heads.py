"""Learned quality heads: deterministic synthetic data, labels, ONNX parity, calibration, repository wiring, and the
committed head on a few generated images (never ../shared/data)."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from contract.tensors import EMBEDDING_DIM, QUALITY_INPUTS, QUALITY_OUTPUTS
from tests.helpers import blurred, encode, product_photo
from training import quality_data as qd
from training.metrics import best_f1_threshold, roc_auc
from training.quality_heads import (
    HEADS_DIR,
    INPUTS,
    OUTPUT,
    PHOTO_KINDS,
    QualityHead,
    Spec,
    export,
    predict,
    render,
    train,
)
from training.splits import role_of

FONTS = qd.font_paths()[:3]


@pytest.fixture(scope="module")
def studio_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "shirt.jpg"
    path.write_bytes(encode(product_photo(420, seed=3)))
    return path


@pytest.fixture(scope="module")
def real_placeholder(tmp_path_factory):
    image = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    qd.ImageDraw.Draw(image).ellipse([20, 20, 60, 60], fill=(30, 180, 230, 255))
    path = tmp_path_factory.mktemp("placeholders") / "shop_logo.png"
    image.save(path)
    return path


def random_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    embedding /= np.linalg.norm(embedding, axis=1, keepdims=True)
    features = np.stack([rng.uniform(0, 3000, n), rng.uniform(0, 1, n)], axis=1).astype(np.float32)
    return embedding, features


# ---------------------------------------------------------------------------------------------- synthetic data


@pytest.mark.parametrize("kind", PHOTO_KINDS)
def test_photo_degradations_are_deterministic_and_labelled(studio_photo, kind):
    spec = Spec(f"{kind}:shirt", kind, str(studio_photo), "catalog:shirt", "train")
    first, meta = render(spec, FONTS)
    second, again = render(spec, FONTS)
    assert np.array_equal(first, second) and meta == again
    labels = meta["labels"]
    assert labels["placeholder"] == 0.0
    expected_blur = {"blur": 1.0, "motion": 1.0, "crop": 0.0, "soft": 0.0, "original": 0.0}
    if kind in expected_blur:
        assert labels["blur"] == expected_blur[kind], meta
    if kind in ("mild_blur", "sweep"):
        assert labels["blur"] == qd.blur_label(meta["sigma_work"])
    if kind == "in_store":
        assert labels == {"blur": None, "small_object": 0.0, "placeholder": 0.0}
    if kind.startswith("small_"):
        assert labels["small_object"] == 1.0 and meta["area"] < qd.SMALL_POSITIVE_AREA
    if kind.startswith("large_"):
        assert labels["small_object"] == 0.0 and meta["area"] >= qd.SMALL_NEGATIVE_AREA
    other = render(Spec(f"{kind}:other", kind, str(studio_photo), "catalog:shirt", "train"), FONTS)[0]
    assert kind in ("original", "in_store") or not np.array_equal(first, other)  # the key seeds the variant


@pytest.mark.parametrize("kind", ["ph_text", "ph_glyph", "ph_box"])
def test_rendered_placeholders_are_deterministic(kind):
    spec = Spec(f"{kind}:7", kind, "", "phrase:Image coming soon", "train")
    first, meta = render(spec, FONTS)
    assert np.array_equal(first, render(spec, FONTS)[0])
    assert meta["labels"] == {"blur": None, "small_object": None, "placeholder": 1.0}


def test_real_placeholder_variants_are_deterministic_and_on_a_plain_canvas(real_placeholder):
    plain = render(Spec("ph_real:logo:0", "ph_real", str(real_placeholder), "real:x", "train"), FONTS)[0]
    spec = Spec("ph_real:logo:3", "ph_real", str(real_placeholder), "real:x", "train")
    assert np.array_equal(render(spec, FONTS)[0], render(spec, FONTS)[0])
    with Image.open(real_placeholder) as png:
        flattened = np.asarray(qd.real_placeholder_variant(png, qd.rng_for(0), plain=True))
    assert flattened[0, 0].tolist() == [255, 255, 255]  # transparent corner -> white
    assert plain.size > 0


def test_label_rules_have_an_unlabelled_band():
    assert qd.blur_label(qd.BLUR_POSITIVE_SIGMA) == 1.0 and qd.blur_label(qd.BLUR_NEGATIVE_SIGMA) == 0.0
    assert qd.blur_label((qd.BLUR_POSITIVE_SIGMA + qd.BLUR_NEGATIVE_SIGMA) / 2) is None
    assert qd.small_object_label(0.05) == 1.0 and qd.small_object_label(0.2) == 0.0
    assert qd.small_object_label(0.1) is None
    assert qd.working_scale((2048, 1024)) == 0.25 and qd.working_scale((300, 200)) == 1.0


def test_motion_blur_kernel_is_a_normalised_line():
    kernel = qd.line_kernel(9.0, 0.0)
    assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-9)
    centre = kernel.shape[0] // 2
    assert kernel[centre].sum() > 0.99  # horizontal: all weight on the middle row


def test_split_is_salted_and_about_an_eighth_is_test():
    roles = [role_of(f"catalog:style-{i}") for i in range(800)]
    assert roles == [role_of(f"catalog:style-{i}") for i in range(800)]
    assert 0.08 < roles.count("test") / 800 < 0.17
    assert 0.08 < roles.count("calibration") / 800 < 0.17


# ---------------------------------------------------------------------------------------------- model


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


def test_roc_auc_and_threshold_choice():
    truth = np.array([0, 0, 0, 1, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), truth) == 1.0
    assert roc_auc(np.array([0.5] * 6), truth) == 0.5
    assert roc_auc(np.ones(3), np.ones(3)) is None
    assert 0.3 < best_f1_threshold(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), truth) < 0.4


# ---------------------------------------------------------------------------------------------- repository wiring


def test_repository_serves_the_learned_head_with_both_inputs(tmp_path):
    from build_engines.repository import ensemble_config, onnx_models, preprocess_model, quality_model

    if not (HEADS_DIR / "quality.onnx").is_file():
        pytest.skip("build_engines/heads/quality.onnx not trained")
    quality = quality_model(HEADS_DIR)
    assert [t.name for t in quality.inputs] == ["EMBEDDING", "QUALITY_FEATURES"]
    assert quality.outputs[0].dims == (len(QUALITY_OUTPUTS),)
    backbone = onnx_models(None, HEADS_DIR)[0]
    config = ensemble_config(preprocess_model(), backbone, quality)
    quality_step = config.split('model_name: "quality"')[1].split("}\n    }")[0]
    assert 'input_map { key: "EMBEDDING" value: "EMBEDDING" }' in quality_step
    assert 'input_map { key: "QUALITY_FEATURES" value: "QUALITY_FEATURES" }' in quality_step
    assert "dims: [ 3 ]" in config.split("output [")[1].split("ensemble_scheduling")[0]
    quality.onnx_builder(tmp_path / "model.onnx")  # checks the file against the contract
    assert (tmp_path / "model.onnx").is_file()


def test_repository_falls_back_to_the_classical_measures(tmp_path, capsys):
    from build_engines.repository import quality_model

    quality = quality_model(tmp_path)  # no quality.onnx here
    assert [t.name for t in quality.inputs] == ["QUALITY_FEATURES"]
    assert quality.outputs[0].dims == (2,)
    assert "INTERIM CLASSICAL" in capsys.readouterr().err
    quality.onnx_builder(tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"QUALITY_FEATURES": np.array([[1e4, 0.5]], np.float32)})[0].shape == (1, 2)


def test_repository_refuses_a_stale_learned_head(tmp_path):
    from build_engines.repository import copy_quality_head
    from training.type_heads import HEADS_DIR as TYPE_HEADS

    with pytest.raises(ValueError, match="retrain"):
        copy_quality_head(TYPE_HEADS / "type_apparel.onnx", tmp_path / "model.onnx")


# ---------------------------------------------------------------------------------------------- committed head


def test_committed_head_flags_blur_and_placeholders_on_generated_images():
    from build_engines.backbone import load_backbone
    from preprocessing.runner import PreprocessRunner
    from training.embeddings import analyse_encoded

    path = HEADS_DIR / "quality.onnx"
    if not path.is_file():
        pytest.skip("build_engines/heads/quality.onnx not trained")
    sharp = product_photo(640, seed=11)
    placeholder = qd.text_placeholder(qd.rng_for("test"), "Image coming soon", FONTS[0] if FONTS else None)
    files = [np.frombuffer(encode(im), np.uint8) for im in (sharp, blurred(sharp), placeholder)]
    analysed = analyse_encoded(files, load_backbone(), runner=PreprocessRunner(max_batch=4))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores = session.run(None, {"EMBEDDING": analysed.embeddings, "QUALITY_FEATURES": analysed.features})[0]
    blur, placeholder_score = QUALITY_OUTPUTS.index("blur"), QUALITY_OUTPUTS.index("placeholder")
    assert scores[1, blur] > scores[0, blur] and scores[1, blur] >= 0.5
    assert scores[2, placeholder_score] > scores[0, placeholder_score] and scores[2, placeholder_score] >= 0.5
