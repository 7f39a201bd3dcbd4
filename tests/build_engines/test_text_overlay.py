"""The text_overlay check: its numpy post-processing on small synthetic inputs (components, DB boxes, crops, CTC,
features, the served score), the wrapped PP-OCRv4 graphs against the wheel's own files, and the direction of the whole
detector on real pictures (project-made product photos score low clean and high with a rendered banner or badge)."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import onnxruntime as ort
import pytest

from build_engines import ocr
from build_engines.artifacts import HEADS_DIR
from build_engines.text_overlay import (
    DETECT_FILE,
    HEAD_FILE,
    RECOGNIZE_FILE,
    TEXT_CODE_PROBS,
    TEXT_CODES,
    TEXT_LINE,
    TEXT_PROB,
    LocalTextOverlay,
    rapidocr_models,
    write_detect_onnx,
    write_recognize_onnx,
)
from contract.tensors import ORIG_SIZE, TEXT_IMAGE, THUMB
from preprocessing.runner import PreprocessRunner
from tests.helpers import concept_photo
from training.concepts import text_overlay

COLOURS = [(200, 40, 40), (40, 90, 200), (60, 160, 80), (230, 200, 60)]


def test_components_follow_4_connectivity_whatever_their_shape():
    mask = np.zeros((7, 9), bool)
    mask[1, 1:8] = mask[1:6, 7] = mask[5, 2:8] = True  # one hooked stroke
    mask[3, 1:3] = True  # a separate blob inside the hook
    mask[6, 0] = True  # a lone pixel
    labels = ocr.label_components(mask)
    assert (labels[~mask] == -1).all()
    assert len(np.unique(labels[mask])) == 3
    assert len(np.unique(labels[1, 1:8].tolist() + labels[1:6, 7].tolist() + labels[5, 2:8].tolist())) == 1
    diagonal = np.eye(3, dtype=bool)
    assert len(np.unique(ocr.label_components(diagonal)[diagonal])) == 3  # diagonal pixels are not 4-connected


def test_db_boxes_grow_the_shrunk_region_back_and_drop_faint_ones():
    prob = np.zeros((64, 64), np.float32)
    prob[10:14, 8:40] = 0.9  # a text line (4 x 32 cells)
    prob[40:44, 8:20] = 0.35  # above the binarisation threshold, below the box threshold
    prob[50:51, 50:51] = 0.9  # a speck
    boxes = ocr.text_boxes(prob, scale=2.0, side=128)
    assert boxes.shape == (1, 5)
    height, width = 4 * 2.0, 32 * 2.0
    grow = height * width * ocr.UNCLIP_RATIO / (2 * (height + width))
    np.testing.assert_allclose(boxes[0, :4], [20 - grow, 28 + grow, 16 - grow, 80 + grow], rtol=1e-5)
    assert boxes[0, 4] == pytest.approx(0.9)
    assert ocr.text_boxes(np.zeros((8, 8), np.float32), 2.0, 16).shape == (0, 5)


def test_line_crops_keep_the_aspect_turn_tall_boxes_upright_and_pad_with_grey():
    image = np.zeros((100, 200, 3), np.uint8)
    image[10:34, 10:106] = 255  # a 24 x 96 white line: 48 px high -> 192 px wide
    image[40:100, 150:170] = 200  # a 60 x 20 tall box: turned upright, 20 x 60 -> 48 x 144
    crops = ocr.line_crops(image, np.array([[10, 34, 10, 106, 1.0], [40, 100, 150, 170, 1.0]], np.float32))
    assert crops.shape == (2, ocr.LINE_HEIGHT, ocr.LINE_WIDTH, 3)
    assert (crops[0, :, :192] == 255).all() and (crops[0, :, 192:] == ocr.LINE_PAD).all()
    assert (crops[1, :, :144] == 200).all() and (crops[1, :, 144:] == ocr.LINE_PAD).all()


def test_ctc_merges_repeats_drops_blanks_and_averages_the_kept_probabilities():
    charset = ["a", "b", "c", "d", "e", " "]
    codes = np.array([0, 3, 3, 0, 3, 5, 5, 6, 1, 0])
    probs = np.array([1.0, 0.9, 0.5, 1.0, 0.7, 0.8, 0.1, 0.6, 0.4, 1.0])
    text, confidence = ocr.ctc_decode(codes, probs, charset)
    assert text == "cce a"
    assert confidence == pytest.approx(np.mean([0.9, 0.7, 0.8, 0.6, 0.4]))
    assert ocr.ctc_decode(np.zeros(5, int), np.ones(5), charset) == ("", 0.0)


def features_of(boxes, lines, foreground=None, object_box=(0, 16, 0, 16)):
    image = np.full((100, 100, 3), 255, np.uint8)
    foreground = np.ones((16, 16), bool) if foreground is None else foreground
    rows = np.array(boxes, np.float32).reshape(-1, 5)
    values = ocr.features(image, rows, lines, np.array([100, 100]), foreground, object_box)
    return dict(zip(ocr.FEATURE_NAMES, values))


def test_features_read_marketing_prices_repetition_and_where_the_text_sits():
    banner = features_of([[0, 10, 0, 100, 0.9]], [("FREESHIPPING", 0.97)])
    assert banner["marketing"] == 1 and banner["price"] == 0 and banner["edge_band"] == pytest.approx(1.0)
    assert banner["text_area"] == pytest.approx(0.1) and banner["confidence"] == pytest.approx(0.97)
    printed = features_of([[40, 50, 30, 70, 0.9]], [("Granola", 0.95)])
    assert printed["marketing"] == 0 and printed["edge_band"] == 0 and printed["off_silhouette"] == 0
    tiled = features_of([[10 * k, 10 * k + 8, 20, 60, 0.9] for k in range(4)], [("€ 24,90", 0.9)] * 3 + [("x", 0.2)])
    assert tiled["price"] == 1 and tiled["repeated"] == pytest.approx(np.log(3))
    background_only = np.zeros((16, 16), bool)
    background_only[4:12, 4:12] = True  # the object in the middle; the text box above it, on background
    off = features_of([[0, 20, 30, 70, 0.9]], [("SALE", 0.9)], background_only, (4, 12, 4, 12))
    assert off["off_silhouette"] == pytest.approx(1.0) and off["outside_object"] > 0.5
    nothing = features_of([], [])
    assert all(v == 0 for v in nothing.values())


def test_the_served_score_is_half_at_the_heads_threshold():
    head = {"mean": [0.0] * 12, "scale": [1.0] * 12, "weights": [0.0] * 11 + [1.0], "intercept": 0.0, "threshold": 0.8}
    logit_at_threshold = np.log(0.8 / 0.2)
    rows = np.zeros((3, 12))
    rows[:, -1] = [logit_at_threshold - 1, logit_at_threshold, logit_at_threshold + 1]
    scores = ocr.served_score(rows, head)
    assert scores[1] == pytest.approx(0.5) and scores[0] < 0.5 < scores[2]


def test_the_committed_head_matches_the_features_computed():
    head = ocr.load_head(HEADS_DIR / HEAD_FILE)
    assert len(head["weights"]) == len(ocr.FEATURE_NAMES) and 0 < head["threshold"] < 1
    assert json.loads((HEADS_DIR / HEAD_FILE).read_text())["card"]["held_out"]["images"] > 0


def test_the_wrapped_detector_is_pp_ocr_on_normalised_pixels_pooled(tmp_path):
    session = ort.InferenceSession(str(write_detect_onnx(tmp_path / "d.onnx")), providers=["CPUExecutionProvider"])
    original = ort.InferenceSession(str(rapidocr_models() / DETECT_FILE), providers=["CPUExecutionProvider"])
    side = TEXT_IMAGE.dims[0]
    image = np.full((1, side, side, 3), 255, np.uint8)
    image[0, 200:240, 100:400] = 0  # a black bar: text-like enough to light the map
    (got,) = session.run(None, {TEXT_IMAGE.name: image})
    (want,) = original.run(None, {"x": (image.transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32)})
    pooled = want[:, 0].reshape(1, side // 2, 2, side // 2, 2).mean(axis=(2, 4))
    assert got.shape == (1, *TEXT_PROB.dims)
    np.testing.assert_allclose(got, pooled, atol=1e-4)


def test_the_wrapped_recogniser_gives_the_best_class_and_its_probability(tmp_path):
    session = ort.InferenceSession(str(write_recognize_onnx(tmp_path / "r.onnx")), providers=["CPUExecutionProvider"])
    original = ort.InferenceSession(str(rapidocr_models() / RECOGNIZE_FILE), providers=["CPUExecutionProvider"])
    lines = np.random.default_rng(0).integers(0, 256, (2, *TEXT_LINE.dims), dtype=np.uint8)
    codes, probs = session.run([TEXT_CODES.name, TEXT_CODE_PROBS.name], {TEXT_LINE.name: lines})
    (softmax,) = original.run(None, {"x": (lines.transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32)})
    assert codes.dtype == np.int32 and codes.shape == (2, *TEXT_CODES.dims)
    np.testing.assert_array_equal(codes, softmax.argmax(axis=2))
    np.testing.assert_allclose(probs, softmax.max(axis=2), atol=1e-5)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return LocalTextOverlay(tmp_path_factory.mktemp("ocr")), ocr.load_head(HEADS_DIR / HEAD_FILE)


def scores_and_lines(detector, files: list[bytes]):
    models, head = detector
    out = PreprocessRunner(max_batch=16, threads=1, text=True).run([np.frombuffer(f, np.uint8) for f in files])
    analysed = models.analyse(out[TEXT_IMAGE.name], out[ORIG_SIZE.name], out[THUMB.name])
    return ocr.served_score(np.array([values for values, _ in analysed]), head), [lines for _, lines in analysed]


def test_the_detector_points_the_right_way_on_real_pictures(detector):
    """Same photos clean, with a banner, with a badge: PP-OCR reads the rendered words, the clean ones score low."""
    photos = range(4)
    clean = [concept_photo(k, 640, COLOURS) for k in photos]
    banner = [concept_photo(k, 640, COLOURS, partial(text_overlay, kind="banner")) for k in photos]
    badge = [concept_photo(k, 640, COLOURS, partial(text_overlay, kind="badge")) for k in photos]
    scores, lines = scores_and_lines(detector, clean + banner + badge)
    clean_scores, overlay_scores = scores[:4], scores[4:]
    assert (clean_scores < 0.5).all(), clean_scores
    assert (overlay_scores >= 0.5).mean() >= 0.75, (overlay_scores, lines[4:])
    assert overlay_scores.mean() > clean_scores.max()
    read = " ".join(text for found in lines[4:] for text, _ in found).upper().replace(" ", "")
    assert any(word.replace(" ", "") in read for word in ("SALE", "NEW", "FREESHIPPING", "$19.99", "SAMPLE", "HOT"))
