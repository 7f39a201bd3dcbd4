"""The shipped quality head: repository wiring, the classical fallback, a stale head refused, and the committed head
on a few generated images (never ../shared/data)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from build_engines.artifacts import HEADS_DIR
from contract.tensors import QUALITY_OUTPUTS
from tests.helpers import blurred, encode, product_photo
from training import placeholder_synthesis as ps
from training.quality_data import rng_for

FONTS = ps.font_paths()[:3]


def test_repository_serves_the_learned_head_with_both_inputs(tmp_path):
    from build_engines.repository import ensemble_config, onnx_models, preprocess_model, quality_model

    if not (HEADS_DIR / "quality.onnx").is_file():
        pytest.skip("build_engines/heads/quality.onnx not trained")
    quality = quality_model(HEADS_DIR)
    assert [t.name for t in quality.inputs] == ["EMBEDDING", "QUALITY_FEATURES"]
    assert quality.outputs[0].dims == (len(QUALITY_OUTPUTS),)
    backbone = onnx_models(None, HEADS_DIR)[0]
    config = ensemble_config([preprocess_model()], backbone, quality)
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

    with pytest.raises(ValueError, match="retrain"):
        copy_quality_head(HEADS_DIR / "type_apparel.onnx", tmp_path / "model.onnx")


def test_committed_head_flags_blur_and_placeholders_on_generated_images():
    from build_engines.backbone import load_backbone
    from preprocessing.runner import PreprocessRunner
    from training.embeddings import analyse_encoded

    path = HEADS_DIR / "quality.onnx"
    if not path.is_file():
        pytest.skip("build_engines/heads/quality.onnx not trained")
    sharp = product_photo(640, seed=11)
    placeholder = ps.text_placeholder(rng_for("test"), "Image coming soon", FONTS[0] if FONTS else None)
    files = [np.frombuffer(encode(im), np.uint8) for im in (sharp, blurred(sharp), placeholder)]
    analysed = analyse_encoded(files, load_backbone(), runner=PreprocessRunner(max_batch=4))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores = session.run(None, {"EMBEDDING": analysed.embeddings, "QUALITY_FEATURES": analysed.features})[0]
    blur, placeholder_score = QUALITY_OUTPUTS.index("blur"), QUALITY_OUTPUTS.index("placeholder")
    assert scores[1, blur] > scores[0, blur] and scores[1, blur] >= 0.5
    assert scores[2, placeholder_score] > scores[0, placeholder_score] and scores[2, placeholder_score] >= 0.5
