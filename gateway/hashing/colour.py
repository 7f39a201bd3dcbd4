"""Colour histogram of an image's foreground, after a tone normalisation: the signal that tells two colourways of one
product apart (the grey-level hashes are blind to colour).

- tone: only foreground pixels count, after an affine tone normalisation (the 5th and 90th luminance percentiles of
  the foreground map to 0 and 1, the same map on R, G and B), which undoes brightness and contrast changes (PIL's
  ImageEnhance ones exactly) up to clipping; soft bins keep JPEG noise from flipping pixels between bins. Grey and
  black colourways still differ where anything else in the picture (skin, shoes, a trim) anchors the normalisation;
  a lone all-grey product and its all-black colourway normalise alike (known limit).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from preprocessing.foreground import foreground_mask

# Pictures (or masks) with fewer foreground pixels than this are counted whole.
MIN_FOREGROUND_PIXELS = 16
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
