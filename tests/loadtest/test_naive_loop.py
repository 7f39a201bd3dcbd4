"""The naive-loop reference of the benchmark: which model file it takes, what it computes per image (on a tiny ONNX
model shaped like the fused vision model: its 4-D input gets the normalised pixels, the other input zeros), and that
the multiprocess harness counts images."""

from __future__ import annotations

import imagehash
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from loadtest.naive_loop import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SERVICE_BATCH,
    NaiveAnalyzer,
    ServiceWork,
    decode_resize,
    default_model,
    measure,
    reference_rows,
)
from tests.helpers import encode, product_photo

FILES = [encode(product_photo(256, seed=k)) for k in range(3)]


def channel_mean_model(path) -> None:
    """PIXELS [n,3,224,224] + QUALITY_FEATURES [n,2] -> EMBEDDING [n,3] (mean of each channel), QUALITY_SCORES."""
    pixels = helper.make_tensor_value_info("PIXELS", TensorProto.FLOAT, ["batch", 3, 224, 224])
    features = helper.make_tensor_value_info("QUALITY_FEATURES", TensorProto.FLOAT, ["batch", 2])
    embedding = helper.make_tensor_value_info("EMBEDDING", TensorProto.FLOAT, ["batch", 3])
    scores = helper.make_tensor_value_info("QUALITY_SCORES", TensorProto.FLOAT, ["batch", 2])
    nodes = [
        helper.make_node("GlobalAveragePool", ["PIXELS"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["EMBEDDING"]),
        helper.make_node("Sigmoid", ["QUALITY_FEATURES"], ["QUALITY_SCORES"]),
    ]
    graph = helper.make_graph(nodes, "vision", [pixels, features], [scores, embedding])  # EMBEDDING not first
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "vision" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    channel_mean_model(path)
    return path


def test_the_default_model_is_the_float32_backbone_exported_once(monkeypatch, tmp_path):
    from loadtest import naive_loop

    exports = []
    monkeypatch.setattr(naive_loop, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(
        "build_engines.vision.export_backbone", lambda path, weights: exports.append(path) or path.write_bytes(b"x")
    )
    first = default_model()
    assert first == default_model() and first.read_bytes() == b"x" and len(exports) == 1
    assert first.parent == tmp_path / ".cache" / "bench" and "fp32" in first.name


def test_one_image_is_embedded_from_normalised_224_pixels_and_hashed_from_a_128_thumbnail(model):
    embedding, phash, dhash = NaiveAnalyzer(model)(FILES[0])
    image, small = decode_resize(FILES[0])
    assert small.size == (224, 224)
    expected = ((np.asarray(small, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).mean(axis=(0, 1))
    np.testing.assert_allclose(embedding, expected, rtol=1e-3)  # float32 sums over 50,176 pixels
    thumb = image.resize((128, 128))
    assert phash == imagehash.phash(thumb) and dhash == imagehash.dhash(thumb)
    assert isinstance(image, Image.Image) and image.mode == "RGB"


def test_the_processes_count_the_images_they_did(model):
    assert measure("pillow_floor", FILES, seconds=0.2, processes=2) > 0
    rows = reference_rows(FILES, seconds=0.2, processes=1, model=model, vision=model)
    assert rows["processes"] == 1 and rows["model"] == str(model) and rows["vision"] == str(model)
    assert rows["pillow_floor_images_per_s"] > 0 and rows["naive_loop_images_per_s"] > 0
    assert rows["service_work_images_per_s"] > 0


def test_the_service_work_feeds_the_preprocess_runners_outputs_to_the_vision_model(model):
    from preprocessing.runner import PreprocessRunner

    batch = [FILES[k % len(FILES)] for k in range(SERVICE_BATCH)]
    outputs = dict(zip(["QUALITY_SCORES", "EMBEDDING"], ServiceWork(model)(batch)))
    pixels = PreprocessRunner(max_batch=SERVICE_BATCH, threads=1).run([np.frombuffer(f, np.uint8) for f in batch])
    np.testing.assert_allclose(outputs["EMBEDDING"], pixels["PIXELS"].mean(axis=(2, 3)), rtol=1e-4, atol=1e-5)
    assert outputs["EMBEDDING"].shape == (SERVICE_BATCH, 3) and outputs["QUALITY_SCORES"].shape == (SERVICE_BATCH, 2)
