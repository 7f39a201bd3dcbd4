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


def test_the_vision_model_serves_the_learned_head_with_both_inputs(tmp_path):
    from build_engines.repository import ensemble_config, preprocess_model, vision_model
    from build_engines.vision import quality_head

    if not (HEADS_DIR / "quality.onnx").is_file():
        pytest.skip("build_engines/heads/quality.onnx not trained")
    head = quality_head(tmp_path, HEADS_DIR)  # checks the file against the contract
    assert head.path == HEADS_DIR / "quality.onnx" and head.output == "QUALITY_SCORES"
    assert [i.name for i in ort.InferenceSession(str(head.path)).get_inputs()] == ["EMBEDDING", "QUALITY_FEATURES"]
    vision = vision_model([head], "fp32")
    assert [t.name for t in vision.inputs] == ["PIXELS", "QUALITY_FEATURES"]
    config = ensemble_config([preprocess_model()], vision)
    step = config.split('model_name: "vision"')[1].split("}\n    }")[0]
    assert 'input_map { key: "QUALITY_FEATURES" value: "QUALITY_FEATURES" }' in step
    assert 'name: "QUALITY_SCORES" data_type: TYPE_FP32 dims: [ 3 ]' in config.split("output [")[1]


def test_the_vision_model_falls_back_to_the_classical_measures(tmp_path, capsys):
    from build_engines.vision import quality_head

    head = quality_head(tmp_path, tmp_path / "no-heads")  # no quality.onnx there
    assert "INTERIM CLASSICAL" in capsys.readouterr().err
    session = ort.InferenceSession(str(head.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["QUALITY_FEATURES"]
    assert session.run(None, {"QUALITY_FEATURES": np.array([[1e4, 0.5]], np.float32)})[0].shape == (1, 2)


def test_a_stale_learned_head_is_refused(tmp_path):
    from build_engines.vision import check_quality_head

    with pytest.raises(ValueError, match="retrain"):
        check_quality_head(HEADS_DIR / "type_apparel.onnx")


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
