"""The `text_overlay` check's numpy side: PP-OCRv4 detection post-processing (DB boxes), the crops the recogniser
reads, CTC decoding, the per-image features and the calibrated logistic score.

numpy and the standard library only, importing nothing of the project: the repository generator copies this file
into the `text_overlay` python-backend model folder (build_engines.text_overlay), where it runs in either profile
(the gpu profile's Triton image has no project checkout and no SciPy or OpenCV).

Coordinates: TEXT_IMAGE is the picture with its longer side resized to `side` (512) and centred on a white square, the
detector's probability map comes back at half that resolution (2x2 average, build_engines.text_overlay), and every
box here is (top, bottom, left, right) in TEXT_IMAGE pixels, ends exclusive.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

# DB post-processing (PP-OCR's defaults: binarise at 0.3, keep regions whose mean probability is >= 0.5, grow the
# shrunk region back by area * 1.6 / perimeter).
DB_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
MIN_BOX_SIDE = 4  # px of TEXT_IMAGE: smaller regions are specks, not readable text
MAX_LINES = 8  # lines recognised per image, the largest first: each costs ~25 ms of CPU in the recogniser
LINE_HEIGHT, LINE_WIDTH = 48, 320  # the recogniser's input (PP-OCRv4 rec: 48 px high; 320 wide gives 40 steps)
LINE_PAD = 128  # grey: 0 after PP-OCR's (x / 255 - 0.5) / 0.5, what PP-OCR pads lines with
EDGE_BAND = 0.12  # share of the picture's height/width along each edge where banners and corner badges sit
MIN_CONFIDENCE = 0.5  # a recognised line below this mean character probability is noise, not text

FEATURE_NAMES = (
    "boxes",  # log(1 + text boxes)
    "text_area",  # text boxes' area / the picture's
    "tallest_line",  # tallest box / the picture's height
    "outside_object",  # area share of text outside the object's box (thumbnail foreground)
    "off_silhouette",  # area share of text over background pixels of the foreground mask
    "edge_band",  # area share of text in the bands along the picture's edges
    "confidence",  # best recognised line's mean character probability
    "characters",  # log(1 + characters of confident lines)
    "marketing",  # confident lines with a marketing word (capped at 3)
    "price",  # 1 when a confident line holds a price, a percentage or a currency
    "repeated",  # log of the largest count of one recognised string (watermark tiling), 0 when none repeats
    "coloured_backing",  # max over boxes: uniformity x saturation of the ring around the box (badges, banners)
)

# Marketing and watermark words, lower case, in the languages the PP-OCRv4 "ch" recogniser reads (Latin script and
# Chinese). The recogniser often drops spaces ("FREESHIPPING"), so words of four letters or more match anywhere; the
# short ones only as whole words.
MARKETING = re.compile(
    r"sale|free|offer|limited|shipping|discount|deal|seller|promo|bonus|gift|quality|outlet|shop|store|sample|"
    r"watermark|copyright|preview|stock|today|only|best|www|\.com|solde|gratis|angebot|oferta|rebaja|nuevo|sconto|"
    r"nouveau|\b(off|new|hot|top|buy|get|save)\b|©|促销|特价|包邮|新品|免费|限时|热卖|正品|样品|折|优惠|秒杀|爆款"
)
PRICE = re.compile(r"[$€£¥₹]|\d+\s?%|\d+[.,]\d\d\b|\b\d+\s?(usd|eur|gbp|rmb)\b|元")


# ------------------------------------------------------------------------------------------ DB detection boxes
def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a boolean image: int64 labels, -1 on background, each component labelled with the
    flat index of its first pixel. Min-propagation with pointer jumping (numpy only; a few dozen passes)."""
    height, width = mask.shape
    background = height * width
    labels = np.where(mask, np.arange(background).reshape(height, width), background)
    while True:
        spread = labels.copy()
        np.minimum(spread[1:], labels[:-1], out=spread[1:])
        np.minimum(spread[:-1], labels[1:], out=spread[:-1])
        np.minimum(spread[:, 1:], labels[:, :-1], out=spread[:, 1:])
        np.minimum(spread[:, :-1], labels[:, 1:], out=spread[:, :-1])
        spread[~mask] = background
        flat = spread.ravel()
        inside = flat < background
        flat[inside] = flat[flat[inside]]  # jump: a pixel's label's own label is in the same component and smaller
        if np.array_equal(spread, labels):
            return np.where(mask, labels, -1)
        labels = spread


def text_boxes(prob: np.ndarray, scale: float, side: int) -> np.ndarray:
    """DB boxes from the detector's probability map `prob` ([h, w], `scale` TEXT_IMAGE px per map cell): float32
    [n, 5] rows (top, bottom, left, right, score) in TEXT_IMAGE px, clipped to [0, side], largest area first."""
    mask = prob > DB_THRESHOLD
    if not mask.any():
        return np.zeros((0, 5), np.float32)
    labels = label_components(mask)
    rows, cols = np.nonzero(mask)
    ids = labels[rows, cols]
    order = np.argsort(ids, kind="stable")
    ids, rows, cols = ids[order], rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, ids.size])
    top = np.minimum.reduceat(rows, starts)
    bottom = np.maximum.reduceat(rows, starts) + 1
    left = np.minimum.reduceat(cols, starts)
    right = np.maximum.reduceat(cols, starts) + 1
    score = np.add.reduceat(prob[rows, cols], starts) / counts
    height, width = (bottom - top) * scale, (right - left) * scale
    grow = height * width * UNCLIP_RATIO / (2.0 * (height + width))  # DB's unclip offset for a rectangle
    boxes = np.stack(
        [
            np.clip(top * scale - grow, 0, side),
            np.clip(bottom * scale + grow, 0, side),
            np.clip(left * scale - grow, 0, side),
            np.clip(right * scale + grow, 0, side),
            score,
        ],
        axis=1,
    ).astype(np.float32)
    keep = (score >= BOX_THRESHOLD) & (np.minimum(height, width) >= MIN_BOX_SIDE)
    boxes = boxes[keep]
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    return boxes[np.argsort(-area, kind="stable")]


# ------------------------------------------------------------------------------------------ recogniser input
def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[h, w, c] -> [height, width, c] float32, bilinear with pixel centres aligned (numpy only)."""
    src_h, src_w = image.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * src_h / height - 0.5, 0, src_h - 1)
    xs = np.clip((np.arange(width) + 0.5) * src_w / width - 0.5, 0, src_w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, src_h - 1), np.minimum(x0 + 1, src_w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    pixels = image.astype(np.float32)
    top = pixels[y0][:, x0] * (1 - wx) + pixels[y0][:, x1] * wx
    bottom = pixels[y1][:, x0] * (1 - wx) + pixels[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def line_crops(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """uint8 [n, LINE_HEIGHT, LINE_WIDTH, 3]: each box cut from `image`, turned upright when taller than wide (as
    PP-OCR does), resized to LINE_HEIGHT keeping its aspect (squeezed when wider than LINE_WIDTH), padded with grey."""
    crops = np.full((len(boxes), LINE_HEIGHT, LINE_WIDTH, 3), LINE_PAD, np.uint8)
    for i, (top, bottom, left, right) in enumerate(np.round(boxes[:, :4]).astype(int)):
        crop = image[top : max(bottom, top + 1), left : max(right, left + 1)]
        if crop.shape[0] >= 1.5 * crop.shape[1]:
            crop = np.rot90(crop)
        width = min(LINE_WIDTH, max(1, math.ceil(LINE_HEIGHT * crop.shape[1] / crop.shape[0])))
        crops[i, :, :width] = np.clip(resize_bilinear(crop, LINE_HEIGHT, width) + 0.5, 0, 255).astype(np.uint8)
    return crops


def ctc_decode(codes: np.ndarray, probs: np.ndarray, charset: list[str]) -> tuple[str, float]:
    """Greedy CTC: the best class per step (`codes`, with their probabilities `probs`), repeats merged, blanks (0)
    dropped; class k >= 1 is charset[k - 1]. Returns the text and its characters' mean probability (0 if empty)."""
    codes = np.asarray(codes).reshape(-1)
    probs = np.asarray(probs, np.float32).reshape(-1)
    keep = codes != 0
    keep[1:] &= codes[1:] != codes[:-1]
    chosen = codes[keep]
    text = "".join(charset[k - 1] if 0 < k <= len(charset) else "" for k in chosen)
    return text, float(probs[keep].mean()) if chosen.size else 0.0


def read_charset(path: Path) -> list[str]:
    """The recogniser's characters (one a line, as written by build_engines.text_overlay), then the space."""
    return [*path.read_text(encoding="utf-8").split("\n"), " "]


# ------------------------------------------------------------------------------------------ features and score
def content_box(orig_size: np.ndarray, side: int) -> tuple[float, float, float, float]:
    """Where the picture lies in TEXT_IMAGE (top, bottom, left, right): longer side = `side`, centred."""
    height, width = (float(v) for v in np.asarray(orig_size).reshape(-1)[:2])
    if height <= 0 or width <= 0:
        return 0.0, float(side), 0.0, float(side)
    fit = side / max(height, width)
    h, w = height * fit, width * fit
    return (side - h) / 2, (side + h) / 2, (side - w) / 2, (side + w) / 2


def _ring_backing(image: np.ndarray, box: np.ndarray) -> float:
    """How much the box sits on a solid coloured patch (a badge, a banner, a price tag): the share of the ring around
    it within reach of the ring's median colour, times that colour's saturation (0 for white, grey and black)."""
    top, bottom, left, right = (int(round(v)) for v in box[:4])
    reach = max(2, (bottom - top) // 3)
    y0, x0 = max(0, top - reach), max(0, left - reach)
    outer = image[y0 : min(image.shape[0], bottom + reach), x0 : min(image.shape[1], right + reach)]
    inner_mask = np.zeros(outer.shape[:2], bool)
    inner_mask[top - y0 : bottom - y0, left - x0 : right - x0] = True
    ring = outer[~inner_mask].astype(np.float32)
    if ring.size == 0:
        return 0.0
    median = np.median(ring, axis=0)
    uniform = float((np.abs(ring - median).sum(axis=1) <= 48).mean())
    saturation = float((median.max() - median.min()) / max(median.max(), 1.0))
    return uniform * saturation


def features(
    image: np.ndarray,
    boxes: np.ndarray,
    lines: list[tuple[str, float]],
    orig_size: np.ndarray,
    foreground: np.ndarray,
    object_box: tuple[int, int, int, int],
) -> np.ndarray:
    """FEATURE_NAMES for one picture: `image` TEXT_IMAGE, `boxes` its text_boxes, `lines` the (text, confidence) of
    the first len(lines) boxes, `foreground` the thumbnail's foreground mask (the aspect-squashed whole picture) and
    `object_box` the object's box on it (top, bottom, left, right; preprocessing.runner.object_bbox; empty: none)."""
    side = image.shape[0]
    c_top, c_bottom, c_left, c_right = content_box(orig_size, side)
    c_height, c_width = max(c_bottom - c_top, 1.0), max(c_right - c_left, 1.0)
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    values["boxes"] = math.log1p(len(boxes))
    if len(boxes):
        # Boxes on the unit square of the picture (the thumbnail's frame).
        unit = np.stack(
            [
                (boxes[:, 0] - c_top) / c_height,
                (boxes[:, 1] - c_top) / c_height,
                (boxes[:, 2] - c_left) / c_width,
                (boxes[:, 3] - c_left) / c_width,
            ],
            axis=1,
        ).clip(0, 1)
        area = (unit[:, 1] - unit[:, 0]) * (unit[:, 3] - unit[:, 2])
        total = max(float(area.sum()), 1e-9)
        values["text_area"] = float(area.sum())
        values["tallest_line"] = float((unit[:, 1] - unit[:, 0]).max())
        mask_h, mask_w = foreground.shape
        o_top, o_bottom, o_left, o_right = (
            (object_box[0] / mask_h, object_box[1] / mask_h, object_box[2] / mask_w, object_box[3] / mask_w)
            if object_box[1] > object_box[0] and object_box[3] > object_box[2]
            else (0.0, 1.0, 0.0, 1.0)  # no object found: the whole picture
        )
        inside_h = (np.minimum(unit[:, 1], o_bottom) - np.maximum(unit[:, 0], o_top)).clip(0)
        inside_w = (np.minimum(unit[:, 3], o_right) - np.maximum(unit[:, 2], o_left)).clip(0)
        values["outside_object"] = float((area - inside_h * inside_w).sum() / total)
        off = 0.0
        for (top, bottom, left, right), a in zip(unit, area):
            cells = foreground[
                int(top * mask_h) : max(int(math.ceil(bottom * mask_h)), int(top * mask_h) + 1),
                int(left * mask_w) : max(int(math.ceil(right * mask_w)), int(left * mask_w) + 1),
            ]
            off += a * (1.0 - float(cells.mean())) if cells.size else 0.0
        values["off_silhouette"] = off / total
        near = (
            (unit[:, 0] < EDGE_BAND)
            | (unit[:, 1] > 1 - EDGE_BAND)
            | (unit[:, 2] < EDGE_BAND)
            | (unit[:, 3] > 1 - EDGE_BAND)
        )
        values["edge_band"] = float(area[near].sum() / total)
        values["coloured_backing"] = max(_ring_backing(image, box) for box in boxes[:MAX_LINES])
    confident = [text.strip().lower() for text, confidence in lines if confidence >= MIN_CONFIDENCE and text.strip()]
    values["confidence"] = max((confidence for text, confidence in lines if text.strip()), default=0.0)
    values["characters"] = math.log1p(sum(len(text) for text in confident))
    values["marketing"] = float(min(3, sum(1 for text in confident if MARKETING.search(text))))
    values["price"] = float(any(PRICE.search(text) for text in confident))
    words = [text for text in confident if len(text) >= 3]
    values["repeated"] = math.log(max((words.count(w) for w in words), default=1))
    return np.array([values[name] for name in FEATURE_NAMES], np.float32)


def load_head(path: Path) -> dict:
    """The trained classifier (training.text_overlay): feature names, standardisation, weights, the threshold."""
    head = json.loads(Path(path).read_text())
    if tuple(head["features"]) != FEATURE_NAMES:
        raise ValueError(f"{path}: trained on features {head['features']}, this code computes {FEATURE_NAMES}")
    return head


def served_score(values: np.ndarray, head: dict) -> np.ndarray:
    """The served score of feature rows [n, len(FEATURE_NAMES)]: the logistic model's log-odds moved so that its
    threshold scores 0.5 (a probability above the threshold scores above 0.5)."""
    standard = (np.asarray(values, np.float64) - np.array(head["mean"])) / np.array(head["scale"])
    logit = standard @ np.array(head["weights"]) + head["intercept"]
    threshold = head["threshold"]
    return (1.0 / (1.0 + np.exp(-(logit - math.log(threshold / (1 - threshold)))))).astype(np.float32)


def analyse(
    images: np.ndarray,
    probs: np.ndarray,
    orig_sizes: np.ndarray,
    foregrounds: list[np.ndarray],
    object_boxes: list[tuple[int, int, int, int]],
    recognise,
    charset: list[str],
) -> list[tuple[np.ndarray, list[tuple[str, float]]]]:
    """Per picture of a batch: its features and recognised lines (`foregrounds` and `object_boxes` of the thumbnails,
    as in `features`). Boxes from each probability map; the MAX_LINES
    largest lines of every picture read in one call of `recognise(crops uint8 [n, 48, 320, 3]) -> (codes [n, T],
    probabilities [n, T])` (the served recogniser)."""
    boxes = [text_boxes(prob, image.shape[0] / prob.shape[0], image.shape[0]) for image, prob in zip(images, probs)]
    crops = [line_crops(image, found[:MAX_LINES]) for image, found in zip(images, boxes)]
    counts = [len(c) for c in crops]
    decoded: list[tuple[str, float]] = []
    if sum(counts):
        codes, code_probs = recognise(np.concatenate(crops))
        decoded = [ctc_decode(c, p, charset) for c, p in zip(codes, code_probs)]
    starts = np.cumsum([0, *counts])
    return [
        (features(image, found, decoded[start:end], size, foreground, box), decoded[start:end])
        for image, found, size, foreground, box, start, end in zip(
            images, boxes, orig_sizes, foregrounds, object_boxes, starts[:-1], starts[1:]
        )
    ]
