"""The tone rescue of the colour signal: whether two images differ only by a global tone change.

A brightness or contrast re-export of a product photo moves its colour histogram past the duplicate threshold (the
foreground mask and the tone bins move with the tone), while a colourway, a recolour or a painted-over region moves
it as far for a reason that matters. Two pictures differ only by a global tone change when one tone map, the same
for every channel and every pixel (y = clip(gain * x + offset)), turns one into the other: the tone map is fitted by
least squares on the 32 x 32 tone thumbnails (4 x 4 box means of THUMB), and what it leaves unexplained is measured
per 8 x 8 grid block (16 x 16 pixels of THUMB), so a local difference (a badge, a swapped print) shows in its block
however small the image-wide mean. Fitted both ways (a brightened copy's clipped highlights cannot be undone, so the
map is fitted from either picture to the other and the better direction counts).

Pixels near 0 or 255 in the target are left out of the fit (clipped by the edit, they carry no tone relation); with
too few left, every pixel is fitted. The residual is expressed in the higher-contrast picture's grey levels (divided
by the gain where it is below 1), and a pair gives no tone evidence (an infinite residual) when the source is flat or
the gain is one no re-export makes (negative: an inversion; beyond MAX_GAIN either way).

The rule (gateway.hashing.rule.colour_distances) applies it to pairs whose hashes agree and whose chi-square is
within `tone_chi2_max`; the residual is compared with `tone_residual_max` (grey levels, mean over a block's pixels
and channels). Measured on the labelled pairs: BENCHMARKS.md, "De-duplication recall", step 9.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from contract.tensors import THUMB_SIDE

TONE_SIDE = 32  # the tone thumbnail's side: THUMB (128) in 4 x 4 box means
_BOX = THUMB_SIDE // TONE_SIDE
_GRID = 8  # blocks per side: 4 x 4 tone-thumbnail pixels each
_CLIP_LOW, _CLIP_HIGH = 2.0, 253.0  # target values outside are clipped by the edit: not fitted
_MIN_FIT_PIXELS = 50  # channel values; fewer unclipped ones: fit every value
_CHUNK = 256  # pairs per vectorised step (float32 temporaries of ~3 MB)
MAX_GAIN = 3.0  # a tone map steeper than this (or flatter than its inverse) is not a re-export's


def thumbnail_image(thumb: np.ndarray | Image.Image) -> Image.Image:
    """A thumbnail as the 128 x 128 RGB image the rescues work on: THUMB as it is; other inputs (a PIL image, a grey
    or RGBA array, another size) made one."""
    img = thumb if isinstance(thumb, Image.Image) else Image.fromarray(np.asarray(thumb))
    if img.mode != "RGB":  # grey, RGBA, palette
        img = img.convert("RGB")
    if img.size != (THUMB_SIDE, THUMB_SIDE):
        img = img.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    return img


def thumbnail_array(thumb: np.ndarray | Image.Image) -> np.ndarray:
    """thumbnail_image as a (128, 128, 3) uint8 array; THUMB itself is returned as it is (no PIL round trip)."""
    if isinstance(thumb, np.ndarray) and thumb.shape == (THUMB_SIDE, THUMB_SIDE, 3) and thumb.dtype == np.uint8:
        return thumb
    return np.asarray(thumbnail_image(thumb))


def tone_thumbnail(thumb: np.ndarray | Image.Image) -> np.ndarray:
    """(32, 32, 3) uint8: the 4 x 4 box means of a 128 x 128 RGB thumbnail (thumbnail_image of THUMB), rounded half
    up (Pillow's `reduce`: ~0.05 ms, where numpy's reshape-and-mean takes ~0.35)."""
    return np.asarray(thumbnail_image(thumb).reduce(_BOX))


def tone_residuals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(m,) float64: for each pair of tone thumbnails a[k], b[k] ((m, 32, 32, 3) uint8), the largest block mean of
    what the best global tone map leaves unexplained, in grey levels; the smaller of the two directions."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), _CHUNK):
        x = a[start : start + _CHUNK].reshape(-1, TONE_SIDE * TONE_SIDE * 3).astype(np.float32)
        y = b[start : start + _CHUNK].reshape(-1, TONE_SIDE * TONE_SIDE * 3).astype(np.float32)
        out[start : start + len(x)] = np.minimum(_one_way(x, y), _one_way(y, x))
    return out


def _one_way(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Block-max residual of y against clip(gain * x + offset), gain and offset fitted per row by least squares."""
    weight = ((y > _CLIP_LOW) & (y < _CLIP_HIGH)).astype(np.float32)
    weight[weight.sum(axis=1) < _MIN_FIT_PIXELS] = 1.0
    n = weight.sum(axis=1)
    wx = weight * x
    sx, sy = wx.sum(axis=1), (weight * y).sum(axis=1)
    sxx, sxy = (wx * x).sum(axis=1), (wx * y).sum(axis=1)
    spread = n * sxx - sx * sx
    flat = spread <= 1e-6 * np.maximum(n * sxx, 1.0)
    gain = np.where(flat, 1.0, (n * sxy - sx * sy) / np.where(flat, 1.0, spread))
    offset = (sy - gain * sx) / n
    fitted = np.clip(gain[:, None] * x + offset[:, None], 0.0, 255.0)
    residual = np.abs(fitted - y).reshape(len(x), TONE_SIDE, TONE_SIDE, 3).mean(axis=3)
    cell = TONE_SIDE // _GRID
    blocks = residual.reshape(len(x), _GRID, cell, _GRID, cell).mean(axis=(2, 4)).max(axis=(1, 2))
    # In the higher-contrast picture's grey levels: fitted into a flatter picture, every difference shrinks by the
    # gain, and a badge on two washed-out copies must not pass for a tone change.
    blocks = blocks / np.minimum(gain, 1.0).clip(min=1e-6)
    # No tone evidence: a flat source (nothing to fit a gain on), or a gain no re-export makes (an inversion, a
    # picture flattened or stretched past MAX_GAIN).
    implausible = flat | (gain < 1.0 / MAX_GAIN) | (gain > MAX_GAIN)
    return np.where(implausible, np.inf, blocks)
