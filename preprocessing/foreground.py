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
