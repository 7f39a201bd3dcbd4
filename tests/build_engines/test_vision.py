"""The vision model: the committed heads spliced onto a backbone give exactly what backbone and heads give run one
after the other; int8 is served only with a calibration made for these backbone weights; the int8 model agrees with
the float32 one on product photos."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from build_engines import vision
from build_engines.export import export_onnx
from contract.categories_file import load_catalog
from contract.tensors import (
    CATEGORY_HEAD_OUTPUT,
    EMBEDDING,
    EMBEDDING_DIM,
    PIXELS,
    QUALITY_FEATURES,
    QUALITY_SCORES,
    SEARCH_EMBEDDING,
    SEARCH_HEAD_MODEL,
    type_probs_output,
)
from preprocessing.runner import PreprocessRunner
from tests.build_engines.test_model_configs import exported_backbone
from tests.helpers import encode, product_photo


class TinyBackbone(torch.nn.Module):
    """A stand-in with the backbone's tensors (PIXELS -> L2-normalised EMBEDDING), small enough to export at once."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, EMBEDDING_DIM, kernel_size=32, stride=32)

    def forward(self, pixels):
        return torch.nn.functional.normalize(self.conv(pixels).mean(dim=(2, 3)), dim=1)


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_spliced_heads_equal_backbone_then_each_head(tmp_path):
    torch.manual_seed(0)
    backbone = export_onnx(
        TinyBackbone(), torch.zeros(2, *PIXELS.dims), tmp_path / "b.onnx", PIXELS.name, EMBEDDING.name
    )
    heads = vision.vision_heads(tmp_path)
    fused = session(vision.build_vision(backbone, heads, tmp_path / "vision.onnx"))
    rng = np.random.default_rng(1)
    pixels = rng.standard_normal((3, *PIXELS.dims)).astype(np.float32)
    features = np.array([[30.0, 0.5], [900.0, 0.04], [5000.0, 0.9]], np.float32)
    got = dict(
        zip([o.name for o in fused.get_outputs()], fused.run(None, {"PIXELS": pixels, "QUALITY_FEATURES": features}))
    )

    (embedding,) = session(backbone).run(None, {PIXELS.name: pixels})
    np.testing.assert_allclose(got[EMBEDDING.name], embedding, atol=1e-6)
    for head in heads:
        alone = session(head.path)
        feeds = {
            i.name: {EMBEDDING.name: embedding, QUALITY_FEATURES.name: features}[i.name] for i in alone.get_inputs()
        }
        np.testing.assert_allclose(got[head.output], alone.run(None, feeds)[0], atol=1e-6, err_msg=head.output)
    catalog = load_catalog()
    expected = {QUALITY_SCORES.name} | {
        type_probs_output(c) for c in catalog.names() if (vision.HEADS_DIR / f"{catalog.get(c).head}.onnx").is_file()
    }
    if catalog.category_head is not None and (vision.HEADS_DIR / f"{catalog.category_head.model}.onnx").is_file():
        expected.add(CATEGORY_HEAD_OUTPUT)
    if (vision.HEADS_DIR / f"{SEARCH_HEAD_MODEL}.onnx").is_file():
        expected.add(SEARCH_EMBEDDING.name)
    assert set(got) == expected | {EMBEDDING.name}


def test_a_head_of_another_width_is_refused(tmp_path, monkeypatch):
    head = tmp_path / "type_apparel.onnx"
    head.write_bytes((vision.HEADS_DIR / "type_apparel.onnx").read_bytes())
    with pytest.raises(ValueError, match="categories.toml lists 6"):
        vision.check_head_width(head, 6)


def test_int8_needs_a_calibration_for_these_weights(tmp_path, monkeypatch, capsys):
    source = exported_backbone()
    monkeypatch.setattr(vision, "export_backbone", lambda path, weights: path.write_bytes(source.read_bytes()))
    heads = vision.vision_heads(tmp_path)
    assert vision.write_vision_onnx(tmp_path / "int8.onnx", heads, None, "int8", tmp_path) == "int8"
    monkeypatch.setattr("build_engines.backbone.backbone_fingerprint", lambda weights=None: "retrained")
    assert vision.write_vision_onnx(tmp_path / "fallback.onnx", heads, None, "int8", tmp_path) == "fp32"
    assert "serving float32" in capsys.readouterr().err
    ops = {node.op_type for node in __import__("onnx").load(str(tmp_path / "int8.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops


def test_int8_agrees_with_float32_on_product_photos(tmp_path, monkeypatch):
    """Guards against broken quantisation (wrong ranges give unrelated embeddings): the accuracy deltas on real
    data are in MODELS.md ("vision: int8")."""
    source = exported_backbone()
    monkeypatch.setattr(vision, "export_backbone", lambda path, weights: path.write_bytes(source.read_bytes()))
    heads = vision.vision_heads(tmp_path)
    for precision in ("int8", "fp32"):
        vision.write_vision_onnx(tmp_path / f"{precision}.onnx", heads, None, precision, tmp_path)
    photos = [
        np.frombuffer(encode(product_photo(600, ((53 * i) % 256, (97 * i) % 256, 90), seed=i)), np.uint8)
        for i in range(12)
    ]
    out = PreprocessRunner(max_batch=16).run(photos)
    feeds = {PIXELS.name: out[PIXELS.name], QUALITY_FEATURES.name: out[QUALITY_FEATURES.name]}
    int8, fp32 = (
        dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))
        for s in map(session, [tmp_path / "int8.onnx", tmp_path / "fp32.onnx"])
    )
    cosine = (int8[EMBEDDING.name] * fp32[EMBEDDING.name]).sum(axis=1)
    assert cosine.min() > 0.97, cosine
    assert np.abs(int8[QUALITY_SCORES.name] - fp32[QUALITY_SCORES.name]).max() < 0.1


def test_a_trained_compliance_head_rides_the_int8_model_in_float32(tmp_path, monkeypatch):
    import shutil

    from contract.tensors import compliance_output
    from training import compliance_head

    source = exported_backbone()
    monkeypatch.setattr(vision, "export_backbone", lambda path, weights: path.write_bytes(source.read_bytes()))
    heads_dir = tmp_path / "heads"
    shutil.copytree(vision.HEADS_DIR, heads_dir)
    rng = np.random.default_rng(0)
    examples = rng.normal(size=(40, EMBEDDING_DIM)).astype(np.float32)
    head = compliance_head.train(examples[:20] + 0.3, examples[20:] - 0.3, "badge")
    compliance_head.write(head, heads_dir, examples)
    heads = vision.vision_heads(tmp_path, heads_dir)
    assert heads[-1].output == compliance_output("badge")
    for precision in ("int8", "fp32"):
        assert vision.write_vision_onnx(tmp_path / f"{precision}.onnx", heads, None, precision, tmp_path) == precision
    photos = [np.frombuffer(encode(product_photo(400, seed=i)), np.uint8) for i in range(6)]
    out = PreprocessRunner(max_batch=8).run(photos)
    feeds = {PIXELS.name: out[PIXELS.name], QUALITY_FEATURES.name: out[QUALITY_FEATURES.name]}
    int8, fp32 = (
        session(tmp_path / f"{p}.onnx").run([compliance_output("badge"), EMBEDDING.name], feeds)
        for p in ("int8", "fp32")
    )
    np.testing.assert_allclose(fp32[0][:, 0], head.scores(fp32[1]), atol=1e-5)  # the head itself stays float32
    np.testing.assert_allclose(int8[0][:, 0], head.scores(int8[1]), atol=1e-5)


def test_a_search_head_rides_the_int8_model_in_float32_with_unit_norm(tmp_path, monkeypatch):
    """A search head (training.search_head, its residual made non-zero) spliced onto the real backbone:
    SEARCH_EMBEDDING is unit-norm on product photos and, in the int8 model, exactly the float32 head applied to that
    model's EMBEDDING (the head is not quantised)."""
    from training import search_head

    source = exported_backbone()
    monkeypatch.setattr(vision, "export_backbone", lambda path, weights: path.write_bytes(source.read_bytes()))
    head = search_head.SearchHead(EMBEDDING_DIM, rank=8)
    with torch.no_grad():
        head.up.normal_(generator=torch.Generator().manual_seed(0))
    search_head.export(head, tmp_path / f"{SEARCH_HEAD_MODEL}.onnx")
    heads = vision.search_head(tmp_path)
    assert vision.write_vision_onnx(tmp_path / "int8.onnx", heads, None, "int8", tmp_path) == "int8"
    photos = [np.frombuffer(encode(product_photo(400, seed=i)), np.uint8) for i in range(6)]
    out = PreprocessRunner(max_batch=8).run(photos)
    searched, embedding = session(tmp_path / "int8.onnx").run(
        [SEARCH_EMBEDDING.name, EMBEDDING.name], {PIXELS.name: out[PIXELS.name]}
    )
    np.testing.assert_allclose(np.linalg.norm(searched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(searched, head(torch.from_numpy(embedding)).detach().numpy(), atol=1e-5)
    assert np.abs(searched - embedding).max() > 0.01  # the head did change the vector
