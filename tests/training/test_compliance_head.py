"""training.compliance_head: logistic regression on backbone embeddings, the precision-first operating point baked in
at 0.5, the plain-operator ONNX export, the model card, and, end to end with a concept the project renders (a red
warning sticker on product photos), the head spliced into the vision model scoring fresh images the right way round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from build_engines import vision
from contract.tensors import EMBEDDING_DIM, PIXELS, QUALITY_FEATURES, compliance_output
from preprocessing.runner import PreprocessRunner
from tests.helpers import encode, product_photo
from training import compliance_head
from training.concepts import warning_sticker

ROOT = Path(__file__).resolve().parents[2]
COLOURS = [(40, 90, 200), (30, 140, 60), (120, 120, 120), (230, 190, 40), (25, 25, 25), (200, 40, 40), (150, 60, 160)]


def separable(n: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    x[:, 0] += shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_training_bakes_the_operating_point_into_the_score():
    head = compliance_head.train(separable(60, 6.0, 1), separable(90, -6.0, 2), "stickers", min_precision=0.95)
    held = head.card["held_out"]
    assert held["positives"] == 18 and held["negatives"] == 27
    assert held["precision"] >= 0.95 and held["recall"] >= 0.9 and held["roc_auc"] >= 0.99
    assert head.scores(separable(20, 6.0, 3)).min() > 0.5 > head.scores(separable(20, -6.0, 4)).max()


def test_the_export_is_plain_operators_and_matches_the_fitted_head(tmp_path):
    import onnx

    head = compliance_head.train(separable(30, 4.0, 1), separable(30, -4.0, 2), "stickers")
    embeddings = separable(10, 0.0, 5)
    path = compliance_head.write(head, tmp_path, embeddings)
    assert {node.op_type for node in onnx.load(str(path)).graph.node} == {"MatMul", "Add", "Sigmoid"}
    np.testing.assert_allclose(compliance_head.onnx_scores(path, embeddings), head.scores(embeddings), atol=1e-5)
    card = json.loads((tmp_path / "compliance_stickers.json").read_text())
    assert card["reason"] == "non_compliant" and card["onnx_parity_max_error"] <= 1e-4
    assert "Compliance check `stickers`" in (tmp_path / "compliance_stickers.md").read_text()


@pytest.mark.parametrize("name", ["blur", "Weapons", "two words"])
def test_names_that_would_collide_or_break_scores_are_refused(name):
    with pytest.raises(SystemExit):
        compliance_head.check_name(name)


def photos(count: int, seed: int, sticker: bool) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        photo = product_photo(
            480, COLOURS[k % len(COLOURS)], seed=seed * 1000 + k, object_fraction=rng.uniform(0.5, 0.8)
        )
        out.append(encode(warning_sticker(photo, rng) if sticker else photo))
    return out


def write_folder(folder: Path, files: list[bytes]) -> Path:
    folder.mkdir(parents=True)
    for k, data in enumerate(files):
        (folder / f"{k:03d}.jpg").write_bytes(data)
    return folder


def test_a_rendered_concept_end_to_end_through_the_served_vision_graph(tmp_path):
    """Train from folders with the command line, splice the head into the vision model (real backbone export) and
    score fresh rendered images: stickered photos high, clean ones (red products included) low."""
    positives = write_folder(tmp_path / "pos", photos(36, 1, sticker=True))
    negatives = write_folder(tmp_path / "neg", photos(36, 2, sticker=False))
    heads = tmp_path / "heads"
    args = ["--positives", str(positives), "--negatives", str(negatives), "--name", "sticker", "--out", str(heads)]
    assert compliance_head.main(args) == 0
    card = json.loads((heads / "compliance_sticker.json").read_text())
    assert card["held_out"]["roc_auc"] >= 0.95

    spliced = vision.compliance_heads(heads)
    assert [h.output for h in spliced] == [compliance_output("sticker")]
    backbone = vision.cached_backbone_export(ROOT / ".cache" / "tests")
    model = vision.build_vision(backbone, spliced, tmp_path / "vision.onnx")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    fresh = photos(14, 3, sticker=True) + photos(14, 4, sticker=False)
    out = PreprocessRunner(max_batch=len(fresh)).run([np.frombuffer(f, np.uint8) for f in fresh])
    feeds = {i.name: out[i.name] for i in session.get_inputs()}
    assert set(feeds) <= {PIXELS.name, QUALITY_FEATURES.name}
    (scores,) = session.run([compliance_output("sticker")], feeds)
    stickered, clean = scores[:14, 0], scores[14:, 0]
    assert (stickered > 0.5).mean() >= 0.85, stickered
    assert (clean < 0.5).mean() >= 0.9, clean
