"""Perceptual hashes and colour histograms for duplicate detection.

Inputs are the small RGB thumbnails Triton returns (128x128, aspect squashed). `phash` and `dhash` reproduce the
`imagehash` package bit for bit (same PIL resampling, same DCT, same bit order), so thresholds tuned with
`imagehash` carry over. Hashes are 64-bit ints whose most significant bit is the first element of imagehash's
row-major bool array: `bin(a ^ b).count("1") == imagehash_a - imagehash_b`.

`compute_hashes` normalises two things a supplier's re-export changes without changing the picture (measured on
labelled pairs of real product photos, `python -m evaluation.dedup_pairs`, numbers in BENCHMARKS.md):

- framing: both hashes are taken on the content box, the foreground's extent (pixels that differ from the median
  border colour) with 2% of its mass cut on each side, located to a fraction of a pixel and resampled to a square,
  so whitespace padding, a square canvas and a few percent of border crop move the hashes little, and a small
  corner watermark moves the box by about a pixel. Known limit: on a nearly left-right symmetric product the odd DCT
  terms are near zero, so even that shift flips a few pHash bits (10 measured in tests/gateway/test_hashing.py);
- tone: the colour histogram counts foreground pixels only, after an affine tone normalisation (the 5th and 90th
  luminance percentiles of the foreground map to 0 and 1, the same map on R, G and B), which undoes brightness and
  contrast changes (PIL's ImageEnhance ones exactly) up to clipping; soft bins keep JPEG noise from flipping pixels
  between bins. Grey and black colourways still differ where anything else in the picture (skin, shoes, a trim)
  anchors the normalisation; a lone all-grey product and its all-black colourway normalise alike (known limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fftpack
from PIL import Image, ImageFilter

from contract.categories import DedupThresholds

HASH_SIZE = 8
PHASH_HIGHFREQ_FACTOR = 4
# Foreground: any channel differs from the median border colour by more than this (0-255).
BACKGROUND_TOLERANCE = 24
MIN_FOREGROUND_PIXELS = 16
# The content box keeps the foreground's mass between these quantiles along each axis.
CONTENT_QUANTILE = 0.02
MIN_CONTENT_SIDE = 8
CONTENT_SIDE = 128  # the content box is resampled to this square before hashing (the thumbnail's own size)
# Tone normalisation: these foreground luminance percentiles map to 0 and 1 (skipped for a flat picture). The upper
# one is below the top so that a brightened copy, whose highlights clipped at 255, still maps its unclipped 90% alike.
TONE_PERCENTILES = (5.0, 90.0)
MIN_TONE_RANGE = 0.05
# Histogram: achromatic pixels by tone, chromatic pixels by hue x saturation; a pixel's weight moves from the
# achromatic to the chromatic part as its saturation (and value) ramp up, and every axis uses linear soft bins.
TONE_BINS, HUE_BINS, SAT_BINS = 4, 12, 2
HSV_HIST_BINS = TONE_BINS + HUE_BINS * SAT_BINS
CHROMA_SATURATION_RAMP = (0.12, 0.30)
CHROMA_VALUE_RAMP = (0.12, 0.25)  # hue means little in near-black pixels
# Rows of the (rows, n, k) broadcast in pairwise_chi2, so memory stays small for large requests.
_CHI2_ROW_BLOCK = 64
_CHI2_EPS = 1e-10
_POPCOUNT_TABLE = np.array([byte.bit_count() for byte in range(256)], dtype=np.uint8)


def _pack_bits(bits: np.ndarray) -> int:
    """Row-major bool array -> int, first element as most significant bit (imagehash's hex order)."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def phash(img: Image.Image) -> int:
    """imagehash.phash(img) (hash_size 8, highfreq_factor 4) as a 64-bit int."""
    size = HASH_SIZE * PHASH_HIGHFREQ_FACTOR
    pixels = np.asarray(img.convert("L").resize((size, size), Image.Resampling.LANCZOS))
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low_frequencies = dct[:HASH_SIZE, :HASH_SIZE]
    return _pack_bits(low_frequencies > np.median(low_frequencies))


def dhash(img: Image.Image) -> int:
    """imagehash.dhash(img) (hash_size 8, horizontal gradients) as a 64-bit int."""
    pixels = np.asarray(img.convert("L").resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.LANCZOS))
    return _pack_bits(pixels[:, 1:] > pixels[:, :-1])


def dhash_edge(img: Image.Image) -> int:
    """dHash of the edge-enhanced grey image.

    Why edges: outlines survive JPEG recompression, rescaling and global brightness/contrast changes, so true
    re-encodes keep the same bits, while a shot with extra fine detail (a stylus beside a tablet, a flash spot)
    changes local gradients. It is a gradient vote independent of pHash's low-frequency DCT vote. Its reach is
    limited: EDGE_ENHANCE_MORE keeps the mean, and the 9x8 downsample averages most added detail away, so on
    synthetic tests it behaves close to a plain dHash; small changes are mostly caught by pHash or the histogram.
    """
    return dhash(img.convert("L").filter(ImageFilter.EDGE_ENHANCE_MORE))


def foreground_mask(rgb: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose colour differs from the median border colour by more than BACKGROUND_TOLERANCE."""
    pixels = np.asarray(rgb)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0).astype(np.float32)
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    for channel in range(3):  # per channel: 3x faster than a max over the last axis
        mask |= np.abs(pixels[..., channel].astype(np.float32) - background[channel]) > BACKGROUND_TOLERANCE
    return mask


def content_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """PIL box (left, top, right, bottom) in sub-pixel coordinates: the foreground with CONTENT_QUANTILE of its mass
    cut on each side along each axis (mass spread evenly inside each pixel); the whole picture when the foreground is
    (nearly) empty or the box would be tiny. Sub-pixel, because a box rounded to whole pixels of a 128 px thumbnail
    can move by a pixel between two encodings, and that shift alone flipped 24 pHash bits of a symmetric product."""
    height, width = mask.shape
    whole = (0.0, 0.0, float(width), float(height))
    if mask.sum() < MIN_FOREGROUND_PIXELS:
        return whole

    def extent(mass: np.ndarray) -> tuple[float, float]:
        cumulative = np.cumsum(mass) / mass.sum()

        def position(level: float) -> float:
            k = int(np.searchsorted(cumulative, level))
            before = cumulative[k - 1] if k > 0 else 0.0
            return k + (level - before) / max(cumulative[k] - before, 1e-12)

        return position(CONTENT_QUANTILE), position(1.0 - CONTENT_QUANTILE)

    top, bottom = extent(mask.sum(axis=1).astype(np.float64))
    left, right = extent(mask.sum(axis=0).astype(np.float64))
    if bottom - top < MIN_CONTENT_SIDE or right - left < MIN_CONTENT_SIDE:
        return whole
    return float(left), float(top), float(right), float(bottom)


def _hsv(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1), saturation and value clipped to [0, 1], of float channels that may leave [0, 1] (the tone
    normalisation does not clip, so the hue of a pixel brighter than the upper percentile is not distorted)."""
    top = np.maximum(np.maximum(red, green), blue)
    spread = top - np.minimum(np.minimum(red, green), blue)
    safe = np.where(spread > 0, spread, np.float32(1.0))
    hue = np.where(
        top == red,
        ((green - blue) / safe) % 6,
        np.where(top == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = np.where(spread > 0, hue / 6, np.float32(0.0))
    saturation = np.where(top > 0, np.clip(spread / np.where(top > 0, top, np.float32(1.0)), 0.0, 1.0), np.float32(0.0))
    return hue.astype(np.float32), saturation.astype(np.float32), np.clip(top, 0.0, 1.0)


def _soft_bins(x: np.ndarray, n: int, circular: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear soft binning of x in [0, 1] into n bins: (lower bin, upper bin, weight of the upper bin)."""
    position = x * n - 0.5
    low = np.floor(position)
    upper_weight = position - low
    low = low.astype(np.intp)
    high = low + 1
    if circular:
        return low % n, high % n, upper_weight
    return np.clip(low, 0, n - 1), np.clip(high, 0, n - 1), upper_weight


def _ramp(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return np.clip((x - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0)


def colour_histogram(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """HSV_HIST_BINS float32 summing to 1: TONE_BINS achromatic tone bins, then HUE_BINS x SAT_BINS chromatic bins.

    Counts the pixels of `mask` (all when it has fewer than MIN_FOREGROUND_PIXELS) after the tone normalisation.
    Grey-level hashes are blind to colour; this is what tells two colourways of one product apart.
    """
    pixels = np.asarray(rgb, dtype=np.uint8)
    if mask is None or mask.sum() < MIN_FOREGROUND_PIXELS:
        mask = np.ones(pixels.shape[:2], dtype=bool)
    luminance = np.asarray(Image.fromarray(pixels).convert("L"))[mask]  # ITU-R 601-2 luma, as PIL computes it
    low, high = np.percentile(luminance, TONE_PERCENTILES) / 255.0
    red, green, blue = (pixels[..., channel][mask].astype(np.float32) / 255.0 for channel in range(3))
    if high - low >= MIN_TONE_RANGE:  # the same affine map on R, G and B, not clipped: hue stays exact
        scale = np.float32(1.0 / (high - low))
        red, green, blue = ((channel - np.float32(low)) * scale for channel in (red, green, blue))
    hue, saturation, value = _hsv(red, green, blue)
    chroma = _ramp(saturation, CHROMA_SATURATION_RAMP) * _ramp(value, CHROMA_VALUE_RAMP)

    tone_low, tone_high, tone_up = _soft_bins(value, TONE_BINS, circular=False)
    tone = np.bincount(tone_low, (1 - chroma) * (1 - tone_up), TONE_BINS)
    tone += np.bincount(tone_high, (1 - chroma) * tone_up, TONE_BINS)
    hue_low, hue_high, hue_up = _soft_bins(hue, HUE_BINS, circular=True)
    sat = (saturation - CHROMA_SATURATION_RAMP[0]) / (1 - CHROMA_SATURATION_RAMP[0])
    sat_low, sat_high, sat_up = _soft_bins(np.clip(sat, 0.0, 1.0), SAT_BINS, circular=False)
    colour = np.zeros(HUE_BINS * SAT_BINS)
    for hue_bin, hue_weight in ((hue_low, 1 - hue_up), (hue_high, hue_up)):
        for sat_bin, sat_weight in ((sat_low, 1 - sat_up), (sat_high, sat_up)):
            colour += np.bincount(hue_bin * SAT_BINS + sat_bin, chroma * hue_weight * sat_weight, HUE_BINS * SAT_BINS)
    histogram = np.concatenate([tone, colour])
    return (histogram / histogram.sum()).astype(np.float32)


def hsv_histogram(img: Image.Image) -> np.ndarray:
    """colour_histogram of a picture's foreground (see the module docstring)."""
    rgb = np.asarray(img.convert("RGB"))
    return colour_histogram(rgb, foreground_mask(rgb))


def chi2_distance(a: np.ndarray, b: np.ndarray) -> float:
    """0.5 * sum((a - b)^2 / (a + b)); 0 for equal histograms, 1 for disjoint normalised ones."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(0.5 * np.sum((a64 - b64) ** 2 / (a64 + b64 + _CHI2_EPS)))


def pairwise_chi2(histograms: np.ndarray) -> np.ndarray:
    """(n, k) histograms -> (n, n) float64 chi-square distances."""
    h = np.asarray(histograms, dtype=np.float64)
    n = h.shape[0]
    distances = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, _CHI2_ROW_BLOCK):
        rows = h[start : start + _CHI2_ROW_BLOCK, None, :]
        distances[start : start + _CHI2_ROW_BLOCK] = 0.5 * np.sum(
            (rows - h[None]) ** 2 / (rows + h[None] + _CHI2_EPS), axis=-1
        )
    return distances


def _popcount_table(words: np.ndarray) -> np.ndarray:
    """Bits set per uint64 through a byte lookup table (numpy < 2 has no bitwise_count)."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(*words.shape, 8)
    return _POPCOUNT_TABLE[as_bytes].sum(axis=-1, dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).astype(np.uint8, copy=False)
    return _popcount_table(words)


def pairwise_hamming(hashes: np.ndarray) -> np.ndarray:
    """(n,) uint64 hashes -> (n, n) uint8 Hamming distances."""
    h = np.asarray(hashes, dtype=np.uint64)
    return _popcount(h[:, None] ^ h[None, :])


@dataclass(frozen=True, eq=False)
class ImageHashes:
    """Everything duplicate detection needs about one image (eq=False: the ndarray field has no boolean ==)."""

    phash: int
    dhash_edge: int
    hsv_hist: np.ndarray


def _as_image(thumb: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(thumb, Image.Image):
        return thumb
    array = np.asarray(thumb)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"thumbnail must be uint8 HxWx3 (or HxW), got {array.dtype} {array.shape}")
    return Image.fromarray(array)


def compute_hashes(thumb: np.ndarray | Image.Image) -> ImageHashes:
    """pHash and dHash-edge of the content box (resampled to CONTENT_SIDE square), colour histogram of the
    foreground (see the module docstring)."""
    img = _as_image(thumb).convert("RGB")
    rgb = np.asarray(img)
    mask = foreground_mask(rgb)
    content = img.resize((CONTENT_SIDE, CONTENT_SIDE), Image.Resampling.LANCZOS, box=content_box(mask))
    histogram = colour_histogram(rgb, mask)
    histogram.setflags(write=False)
    return ImageHashes(phash=phash(content), dhash_edge=dhash_edge(content), hsv_hist=histogram)


def duplicate_matrix(hashes: list[ImageHashes], t: DedupThresholds) -> np.ndarray:
    """(n, n) bool: True where all three signals agree the two images are the same picture (diagonal True)."""
    n = len(hashes)
    if n == 0:
        return np.zeros((0, 0), dtype=bool)
    phashes = np.array([h.phash for h in hashes], dtype=np.uint64)
    edge_hashes = np.array([h.dhash_edge for h in hashes], dtype=np.uint64)
    histograms = np.stack([h.hsv_hist for h in hashes])
    duplicates = (
        (pairwise_hamming(phashes) <= t.phash_max_distance)
        & (pairwise_hamming(edge_hashes) <= t.dhash_edge_max_distance)
        & (pairwise_chi2(histograms) <= t.hsv_chi2_max)
    )
    np.fill_diagonal(duplicates, True)
    return duplicates
