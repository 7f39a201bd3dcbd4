"""The straightforward forms of compute_hashes, the colour histogram and the foreground mask, as they were before
issue #13 made them faster, kept verbatim so the tests can pin the fast forms to them bit for bit (the thresholds
tuned on these hashes and histograms must keep meaning the same), plus issue #15's duplicate mask written from its
definition. The pieces issue #13 left as they were (the soft
binning and the ramps) are imported, not copied."""

from __future__ import annotations

import numpy as np
import scipy.fftpack
from PIL import Image, ImageFilter

from gateway.hashing.rule import ImageHashes
from preprocessing.colour import (
    CHROMA_SATURATION_RAMP,
    CHROMA_VALUE_RAMP,
    HUE_BINS,
    MIN_FOREGROUND_PIXELS,
    MIN_TONE_RANGE,
    SAT_BINS,
    TONE_BINS,
    TONE_PERCENTILES,
    _ramp,
    _soft_bins,
)
from preprocessing.foreground import (
    BACKGROUND_TOLERANCE,
    DUPLICATE_CONTRAST_TOP,
    DUPLICATE_TOLERANCE_RANGE,
    DUPLICATE_TOLERANCE_SHARE,
    border_colour,
)
from preprocessing.perceptual import CONTENT_SIDE, HASH_SIZE, PHASH_HIGHFREQ_FACTOR, _pack_bits, content_box


def foreground_mask(rgb: np.ndarray, tolerance: int = BACKGROUND_TOLERANCE) -> np.ndarray:
    pixels = np.asarray(rgb)
    background = border_colour(pixels).astype(np.float32)
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    for channel in range(3):
        mask |= np.abs(pixels[..., channel].astype(np.float32) - background[channel]) > tolerance
    return mask


def duplicate_mask(rgb: np.ndarray) -> np.ndarray:
    """Every pixel's largest channel difference from the border colour; the contrast is the smallest multiple of
    half a level that at most DUPLICATE_CONTRAST_TOP of the pixels exceed; the tolerance a share of it, clipped."""
    pixels = np.asarray(rgb)
    deviation = np.abs(pixels.astype(np.float64) - border_colour(pixels)).max(axis=2)
    contrast = next(c for c in np.arange(0.0, 255.5, 0.5) if (deviation > c).mean() <= DUPLICATE_CONTRAST_TOP)
    tolerance = min(
        max(DUPLICATE_TOLERANCE_SHARE * contrast, DUPLICATE_TOLERANCE_RANGE[0]), DUPLICATE_TOLERANCE_RANGE[1]
    )
    return deviation > tolerance


def _hsv(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def colour_histogram(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    pixels = np.asarray(rgb, dtype=np.uint8)
    if mask is None or mask.sum() < MIN_FOREGROUND_PIXELS:
        mask = np.ones(pixels.shape[:2], dtype=bool)
    luminance = np.asarray(Image.fromarray(pixels).convert("L"))[mask]
    low, high = np.percentile(luminance, TONE_PERCENTILES) / 255.0
    red, green, blue = (pixels[..., channel][mask].astype(np.float32) / 255.0 for channel in range(3))
    if high - low >= MIN_TONE_RANGE:
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


def phash(img: Image.Image) -> int:
    size = HASH_SIZE * PHASH_HIGHFREQ_FACTOR
    pixels = np.asarray(img.convert("L").resize((size, size), Image.Resampling.LANCZOS))
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low_frequencies = dct[:HASH_SIZE, :HASH_SIZE]
    return _pack_bits(low_frequencies > np.median(low_frequencies))


def dhash(img: Image.Image) -> int:
    pixels = np.asarray(img.convert("L").resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.LANCZOS))
    return _pack_bits(pixels[:, 1:] > pixels[:, :-1])


def dhash_edge(img: Image.Image) -> int:
    return dhash(img.convert("L").filter(ImageFilter.EDGE_ENHANCE_MORE))


def compute_hashes(thumb: np.ndarray | Image.Image) -> ImageHashes:
    img = thumb if isinstance(thumb, Image.Image) else Image.fromarray(np.asarray(thumb))
    img = img.convert("RGB")
    rgb = np.asarray(img)
    mask = foreground_mask(rgb)
    content = img.resize((CONTENT_SIDE, CONTENT_SIDE), Image.Resampling.LANCZOS, box=content_box(mask))
    histogram = colour_histogram(rgb, duplicate_mask(rgb))
    return ImageHashes(phash=phash(content), dhash_edge=dhash_edge(content), hsv_hist=histogram)
