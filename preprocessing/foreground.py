"""The product/background split that every image check shares: a pixel is foreground when any channel differs from the
picture's border colour (the median of its outermost rows and columns) by more than BACKGROUND_TOLERANCE.

Used by the preprocess model's object box (blur and small-object features), the gateway's hashes (content box and
colour histogram), training-data synthesis and the de-duplication pair generator. numpy only, so all of them can
import it without pulling in DALI, PIL or the gateway.
"""

from __future__ import annotations

import math

import numpy as np

# Any channel further than this (0-255) from the border colour is foreground: above JPEG noise and the faint tint of
# a studio backdrop, below the contrast of a product edge.
BACKGROUND_TOLERANCE = 24


def border_colour(rgb: np.ndarray) -> np.ndarray:
    """(3,) float64: the per-channel median of the picture's outermost rows and columns."""
    pixels = np.asarray(rgb)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.median(border, axis=0)


def foreground_mask(rgb: np.ndarray, tolerance: int = BACKGROUND_TOLERANCE) -> np.ndarray:
    """(h, w) bool: pixels of an (h, w, 3) integer RGB array that differ from the border colour by more than
    `tolerance` in any channel, i.e. np.abs(rgb - median).max(axis=2) > tolerance in exact arithmetic.

    For an integer pixel p and a median b (an integer or a half), |p - b| > t holds exactly when p > floor(b + t) or
    p < ceil(b - t), so uint8 pixels are compared with two integer bounds per channel, with no float copy of the
    picture; other dtypes take the float32 form (exact too: small integers and halves).
    """
    pixels = np.asarray(rgb)
    background = border_colour(pixels)
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    if pixels.dtype != np.uint8:
        for channel in range(3):
            mask |= np.abs(pixels[..., channel].astype(np.float32) - np.float32(background[channel])) > tolerance
        return mask
    for channel in range(3):
        values = pixels[..., channel]
        above = math.floor(background[channel] + tolerance)  # values above this are foreground
        below = math.ceil(background[channel] - tolerance)  # and values below this
        if above < 0 or below > 255:  # only with a negative tolerance: every pixel
            mask[...] = True
        if 0 <= above < 255:
            mask |= values > above
        if 0 < below <= 255:
            mask |= values < below
    return mask


# Duplicate detection's colour histogram reads its own foreground: a brightness or contrast
# re-export scales every pixel's difference from the border colour, so a fixed tolerance keeps different pixels of
# the two copies (a darkened copy on white loses the product's light parts). There the tolerance follows the
# picture's own contrast against its border: DUPLICATE_TOLERANCE_SHARE of the deviation that only
# DUPLICATE_CONTRAST_TOP of the pixels exceed, within DUPLICATE_TOLERANCE_RANGE (the upper end is
# BACKGROUND_TOLERANCE: a picture with 200 levels of contrast or more keeps the shared mask, so a textured studio
# backdrop stays background; the lower end stays above JPEG noise). Measured on the labelled pairs (BENCHMARKS.md
# "De-duplication recall"): held-out recall 0.926 -> 0.929 at the configured thresholds, own variant as hero on the
# catalog 0.932 -> 0.938.
DUPLICATE_TOLERANCE_SHARE = BACKGROUND_TOLERANCE / 200
DUPLICATE_CONTRAST_TOP = 0.005
DUPLICATE_TOLERANCE_RANGE = (8.0, float(BACKGROUND_TOLERANCE))


def _doubled_deviation(rgb: np.ndarray) -> np.ndarray:
    """(h, w) int16: twice each uint8 pixel's largest channel difference from the border colour (exact: the median
    border colour is an integer or a half)."""
    pixels = np.asarray(rgb)
    doubled_background = np.rint(2 * border_colour(pixels)).astype(np.int16)
    doubled = np.abs(pixels[..., 0].astype(np.int16) * 2 - doubled_background[0])
    for channel in (1, 2):
        np.maximum(
            doubled, np.abs(pixels[..., channel].astype(np.int16) * 2 - doubled_background[channel]), out=doubled
        )
    return doubled


def _contrast_of(doubled: np.ndarray) -> float:
    """The smallest deviation d from the border colour (largest channel difference, in levels, a multiple of 0.5)
    that at most DUPLICATE_CONTRAST_TOP of the pixels exceed, from _doubled_deviation."""
    exceeding = doubled.size - np.cumsum(np.bincount(doubled.ravel(), minlength=511))
    return float(np.argmax(exceeding <= DUPLICATE_CONTRAST_TOP * doubled.size)) / 2


def _tolerance_of(contrast: float) -> float:
    low, high = DUPLICATE_TOLERANCE_RANGE
    return float(np.clip(DUPLICATE_TOLERANCE_SHARE * contrast, low, high))


def duplicate_tolerance(rgb: np.ndarray) -> float:
    """The tolerance duplicate_mask uses for these uint8 pixels (see DUPLICATE_TOLERANCE_SHARE)."""
    return _tolerance_of(_contrast_of(_doubled_deviation(rgb)))


def duplicate_mask(rgb: np.ndarray, shared: np.ndarray | None = None) -> np.ndarray:
    """The foreground the colour histogram of duplicate detection reads (see DUPLICATE_TOLERANCE_SHARE):
    foreground_mask of uint8 pixels at the picture's duplicate_tolerance. `shared`: the picture's foreground_mask,
    when the caller has it (returned as it is when the tolerance is the shared one)."""
    doubled = _doubled_deviation(rgb)
    tolerance = _tolerance_of(_contrast_of(doubled))
    if shared is not None and tolerance == BACKGROUND_TOLERANCE:
        return shared
    return doubled > 2 * tolerance
