"""Own variant as hero (issue #15): colour descriptors for the own-variant check compared under the shipped consensus
rule (gateway.decisions.variant.consensus_checks) in the real selection, on the trials of evaluation.variant_hero.

The shipped check reuses duplicate detection's tone-normalised foreground histogram (preprocessing.colour). On
Magento's model shots the garment is a fraction of the foreground (skin, hair, other garments), so this compares
descriptors of the same 128 px thumbnail that weight the garment more, each a candidate for the variant check only
(duplicate detection keeps its histogram):
- `centre<s>`: the histogram with each foreground pixel weighted by a Gaussian (sigma s of the content box's sides)
  around the content box's centre, where a worn garment usually is;
- `noskin`: skin-tone pixels (a YCbCr box) left out;
- `raw`: no tone normalisation (grey and black colourways stay apart, brightness re-exports do not);
- `kmeans3`: the three dominant colours of the foreground (weighted k-means in CIELAB, centre-weighted), compared
  by the mass-weighted distance to the other picture's nearest dominant colour (/100);
- `avg(a,b)`, `max(a,b)`: two distances combined.

Per descriptor: the pair AUC (a product's own views vs its own images against another colourway's front), then a
threshold sweep with hero = own variant (all catalog trials, and those whose own photographs agree:
variant_hero.OWN_PHOTOS_DISAGREE), the false-inconsistent rate of the catalog's own images, and hero = own on the
products/ trials (other shops: reported, never used to choose), and its CPU time an image (this machine, as loaded).

    python -m evaluation.variant_descriptors --vision <repo>/analyze/1/vision.onnx [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np

from contract.categories import VariantThresholds
from contract.categories_file import load_catalog
from evaluation import variant_hero
from evaluation.variant_data import VariantImages, load_variant_images
from gateway.decisions import selection
from gateway.decisions.variant import consensus_checks
from gateway.hashing import chi2_pairs
from preprocessing import colour
from preprocessing.foreground import foreground_mask
from preprocessing.perceptual import content_box

THRESHOLDS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)
KMEANS_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
MAX_FALSE_INCONSISTENT = 0.05  # the calibration rule of the shipped threshold (BENCHMARKS.md "Own variant as hero")
SKIN_CB, SKIN_CR = (77, 127), (133, 173)  # Chai & Ngan's skin box in YCbCr (0-255)


def weighted_histogram(rgb: np.ndarray, mask: np.ndarray, weight: np.ndarray, tone: bool = True) -> np.ndarray:
    """preprocessing.colour.colour_histogram with each foreground pixel counted `weight` times (tone percentiles
    unweighted); `tone` False skips the tone normalisation. Unit weights give the shipped histogram."""
    pixels = np.asarray(rgb, dtype=np.uint8)
    if np.count_nonzero(mask) < colour.MIN_FOREGROUND_PIXELS:
        mask = np.ones(pixels.shape[:2], dtype=bool)
    luminance, channels = colour._foreground_channels(colour._foreground_pixels(pixels, mask))
    w = np.asarray(weight, np.float64)[mask]
    if w.sum() <= 1e-9:
        w = np.ones_like(w)
    low, high = colour._tone_range(luminance)
    if tone and high - low >= colour.MIN_TONE_RANGE:
        channels -= np.float32(low)
        channels *= np.float32(1.0 / (high - low))
    hue, saturation, value = colour._hsv(*channels)
    chroma = colour._ramp(saturation, colour.CHROMA_SATURATION_RAMP) * colour._ramp(value, colour.CHROMA_VALUE_RAMP)
    tone_low, tone_high, tone_up = colour._soft_bins(value, colour.TONE_BINS, circular=False)
    achromatic = (1 - chroma) * w
    tones = np.bincount(tone_low, achromatic * (1 - tone_up), colour.TONE_BINS)
    tones += np.bincount(tone_high, achromatic * tone_up, colour.TONE_BINS)
    hue_low, hue_high, hue_up = colour._soft_bins(hue, colour.HUE_BINS, circular=True)
    sat = np.clip((saturation - colour.CHROMA_SATURATION_RAMP[0]) / (1 - colour.CHROMA_SATURATION_RAMP[0]), 0.0, 1.0)
    sat_low, sat_high, sat_up = colour._soft_bins(sat, colour.SAT_BINS, circular=False)
    colours = np.zeros(colour.HUE_BINS * colour.SAT_BINS)
    for hue_bin, hue_weight in ((hue_low, 1 - hue_up), (hue_high, hue_up)):
        for sat_bin, sat_weight in ((sat_low, 1 - sat_up), (sat_high, sat_up)):
            colours += np.bincount(
                hue_bin * colour.SAT_BINS + sat_bin, chroma * w * hue_weight * sat_weight, len(colours)
            )
    histogram = np.concatenate([tones, colours])
    return (histogram / histogram.sum()).astype(np.float32)


def centre_weight(mask: np.ndarray, sigma: float) -> np.ndarray:
    """(h, w) Gaussian around the content box's centre, sigma a fraction of the box's width and height."""
    left, top, right, bottom = content_box(mask)
    height, width = mask.shape
    y = (np.arange(height) + 0.5 - (top + bottom) / 2) / max(bottom - top, 1.0)
    x = (np.arange(width) + 0.5 - (left + right) / 2) / max(right - left, 1.0)
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))


def skin_tone(rgb: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels inside the YCbCr skin box."""
    r, g, b = (np.asarray(rgb, np.float32)[..., k] for k in range(3))
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1]) & (cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1])


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8) -> CIELAB (D65)."""
    c = np.asarray(rgb, np.float64) / 255
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def dominant_colours(rgb: np.ndarray, mask: np.ndarray, k: int = 3, rounds: int = 8) -> np.ndarray:
    """(k, 4): the foreground's k dominant CIELAB colours and their share (centre-weighted k-means, fixed seed)."""
    if np.count_nonzero(mask) < colour.MIN_FOREGROUND_PIXELS:
        mask = np.ones(mask.shape, dtype=bool)
    points, weight = lab(rgb)[mask], centre_weight(mask, 0.35)[mask]
    centres = points[np.random.default_rng(0).choice(len(points), k, replace=False)]
    for _ in range(rounds):
        nearest = np.argmin(((points[:, None] - centres[None]) ** 2).sum(2), 1)
        for c in range(k):
            if (nearest == c).any():
                centres[c] = np.average(points[nearest == c], axis=0, weights=weight[nearest == c] + 1e-9)
    share = np.array([weight[nearest == c].sum() for c in range(k)])
    return np.column_stack([centres, share / share.sum()])


def dominant_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mass-weighted CIELAB distance of each dominant colour to the other picture's nearest, both ways, /100."""
    d = np.sqrt(((a[:, None, :3] - b[None, :, :3]) ** 2).sum(2))
    return float(0.5 * ((d.min(1) * a[:, 3]).sum() + (d.min(0) * b[:, 3]).sum()) / 100)


def chi2_matrix(histograms: np.ndarray) -> np.ndarray:
    n = len(histograms)
    i, j = np.triu_indices(n, 1)
    matrix = np.zeros((n, n))
    matrix[i, j] = matrix[j, i] = chi2_pairs(np.asarray(histograms, np.float32), i, j)
    return matrix


def thumbnails(v: VariantImages, cache_dir: Path) -> np.ndarray:
    """THUMB of every image, from the production preprocessing (cached by the image list)."""
    from evaluation.vision_runtime import batched
    from preprocessing.runner import PreprocessRunner

    key = hashlib.sha256("\n".join(map(str, v.paths)).encode()).hexdigest()[:16]
    cache = cache_dir / f"variant-thumbs-{key}.npy"
    if not cache.is_file():
        runner = PreprocessRunner(max_batch=32)
        files = (np.fromfile(p, dtype=np.uint8) for p in v.paths)
        thumbs = np.concatenate([runner.run(batch)["THUMB"] for batch in batched(files, 32)])
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cache, thumbs)
    return np.load(cache)


def row_of(image) -> int:
    return int(image.id.rsplit("-", 1)[1])  # variant_hero.analysis names an image <supplier>-<row>


def with_distance(matrix: np.ndarray):
    """The real selection with the own-variant check's distance read from `matrix` (by image row)."""

    def checks(images, t, colours=frozenset()):  # descriptors are compared without a named colour
        rows = lambda taking_part: np.ix_(*[[row_of(a) for a in taking_part]] * 2)  # noqa: E731
        return consensus_checks([a for a in images if a.hashes is not None], t, lambda part: matrix[rows(part)])

    return mock.patch.object(selection, "variant_checks", checks)


def pair_auc(v: VariantImages, matrix: np.ndarray, source: str) -> float:
    """P(an own-vs-other-colourway pair is further apart than an own-views pair), ties half."""
    own, other, products = [], [], set()
    for trial in variant_hero.trials(v, 1):
        if trial.source != source:
            continue
        other += [matrix[r, trial.planted[0]] for r in trial.own]
        if trial.own not in products:
            products.add(trial.own)
            own += [matrix[a, b] for k, a in enumerate(trial.own) for b in trial.own[k + 1 :]]
    own_d, other_d = np.array(own)[:, None], np.array(other)[None, :]
    return float(np.mean((other_d > own_d) + 0.5 * (other_d == own_d)))


def sweep(v: VariantImages, matrix: np.ndarray, thresholds: tuple[float, ...]) -> list[dict]:
    catalog = load_catalog()
    rows = []
    for threshold in thresholds:
        row = {"max_distance": threshold}
        for name, source in (("apparel", "catalog"), ("default", "products")):
            category = dataclasses.replace(catalog.get(name), min_side=0)
            category = dataclasses.replace(category, variant=VariantThresholds(threshold, category.variant.min_images))
            with with_distance(matrix):
                result = variant_hero.summarise(v, category, [source], "served")[source]
            row[source] = {
                "hero_own": result["after"]["hero_own"],
                "hero_own_photos_agree": result["after_own_photos_agree"]["hero_own"],
                "false_inconsistent": result["false_inconsistent"]["rate"],
            }
        rows.append(row)
    return rows


def calibrated(rows: list[dict]) -> dict | None:
    """The row of the smallest threshold whose catalog false-inconsistent rate is at most MAX_FALSE_INCONSISTENT."""
    return next((r for r in rows if r["catalog"]["false_inconsistent"] <= MAX_FALSE_INCONSISTENT), None)


def per_image_us(fn: Callable[[np.ndarray, np.ndarray], object], thumbs: np.ndarray, masks: list) -> float:
    start = time.perf_counter()
    for thumb, mask in zip(thumbs, masks):
        fn(thumb, mask)
    return round((time.perf_counter() - start) / len(thumbs) * 1e6, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vision", type=Path, required=True, help="the served vision model file")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgsel-variant-cache"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    v = load_variant_images(args.vision, args.cache)
    thumbs = thumbnails(v, args.cache)
    masks = [foreground_mask(t) for t in thumbs]
    skins = [skin_tone(t) for t in thumbs]
    ones = [np.ones(m.shape) for m in masks]

    def histograms(weights, tone=True):
        return chi2_matrix([weighted_histogram(t, m, w, tone) for t, m, w in zip(thumbs, masks, weights)])

    shipped = chi2_matrix(v.hsv_hist)
    raw = histograms(ones, tone=False)
    centre = {s: histograms([centre_weight(m, s) for m in masks]) for s in (0.25, 0.35, 0.5)}
    dominant = [dominant_colours(t, m) for t, m in zip(thumbs, masks)]
    n = len(dominant)
    descriptors = {
        "shipped": (shipped, THRESHOLDS),
        "raw": (raw, THRESHOLDS),
        **{f"centre{s}": (matrix, THRESHOLDS) for s, matrix in centre.items()},
        "noskin": (histograms([~s for s in skins]), THRESHOLDS),
        "centre0.25+noskin": (histograms([centre_weight(m, 0.25) * ~s for m, s in zip(masks, skins)]), THRESHOLDS),
        "raw+centre0.5": (histograms([centre_weight(m, 0.5) for m in masks], tone=False), THRESHOLDS),
        "avg(shipped,centre0.25)": ((shipped + centre[0.25]) / 2, THRESHOLDS),
        "avg(shipped,raw)": ((shipped + raw) / 2, THRESHOLDS),
        "max(shipped,raw)": (np.maximum(shipped, raw), THRESHOLDS),
        "kmeans3": (
            np.array([[dominant_distance(dominant[i], dominant[j]) for j in range(n)] for i in range(n)]),
            KMEANS_THRESHOLDS,
        ),
    }
    timing_masks, timing_thumbs = masks[:100], thumbs[:100]
    results = {
        "images": n,
        "cpu_us_per_image": {
            "shipped histogram": per_image_us(colour.colour_histogram, timing_thumbs, timing_masks),
            "centre weight": per_image_us(lambda t, m: centre_weight(m, 0.5), timing_thumbs, timing_masks),
            "skin mask": per_image_us(lambda t, m: skin_tone(t), timing_thumbs, timing_masks),
            "second (weighted) histogram": per_image_us(
                lambda t, m: weighted_histogram(t, m, centre_weight(m, 0.5)), timing_thumbs, timing_masks
            ),
            "kmeans3": per_image_us(dominant_colours, timing_thumbs, timing_masks),
        },
        "descriptors": {},
    }
    for name, (matrix, thresholds) in descriptors.items():
        rows = sweep(v, matrix, thresholds)
        results["descriptors"][name] = {
            "auc": {source: round(pair_auc(v, matrix, source), 3) for source in ("catalog", "products")},
            "calibrated": calibrated(rows),
            "sweep": rows,
        }
        print(name, json.dumps(results["descriptors"][name]["auc"]), json.dumps(calibrated(rows)), flush=True)
    print(json.dumps(results["cpu_us_per_image"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
