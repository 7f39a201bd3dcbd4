"""The framing rescue's grey pyramid of one picture (gateway.hashing.framing): its grey thumbnails at LEVELS with
their integral images, and the coarse search's per-picture caches (spectrum, window deviations, template spectra),
made for all the pictures of one search at once. Kept apart from framing.py, which holds the search and its rule:
what a picture brings here, how two pictures are compared there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from contract.tensors import THUMB_SIDE
from gateway.hashing.tone import thumbnail_image

LEVELS = (32, 64, THUMB_SIDE)  # grey pyramid sides: the full search at the first, refinements at the others


class GreyPyramid:
    """One image's grey thumbnails at LEVELS with their integral images (box sums of any window in O(1)), each level
    made on first use (most pairs stop at the first), and what the coarse search reuses across the pairs of one
    product: the picture's spectrum, its window deviations and its templates' spectra at each set of window sizes.
    The first level and the coarse search's caches are made for all the pictures of a search at once
    (`fill_levels`, `fill_as_large`, `fill_as_small`): the same numbers, in a few array operations instead of a
    few per picture, which were most of the rescue's time on an 8-image product."""

    def __init__(self, thumb: np.ndarray | Image.Image):
        self._grey = thumbnail_image(thumb).convert("L")
        self._levels: dict[int, np.ndarray] = {}
        self._integrals: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._as_large: dict[Sizes, tuple[np.ndarray, np.ndarray]] = {}
        self._as_small: dict[Sizes, np.ndarray] = {}

    def level(self, level: int) -> np.ndarray:
        """(side, side) pixels: float64 at the first level, float32 at the finer ones."""
        fill_levels([self], level)
        return self._levels[level]

    def integrals(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """The integral images (float64) of the level's pixels and of their squares, made on first use: only the
        picture searched in needs them, and each costs ~40 us a row-wise or column-wise pass at 128 px (numpy's
        cumulative sums do not vectorise)."""
        fill_integrals([self], level)
        return self._integrals[level]

    def _grey_at(self, side: int) -> np.ndarray:
        grey = self._grey if side == THUMB_SIDE else self._grey.resize((side, side), Image.Resampling.BOX)
        return np.asarray(grey, np.float64)

    def template(self, level: int, width: int, height: int) -> np.ndarray:
        """(height, width): the whole picture at `level`, area-resampled (two small matrix products: PIL's resize
        and array conversion cost several times more at these sizes)."""
        return _templates(self.level(level), width, height)

    def correlations(self, level: int, template: np.ndarray, ys: range, xs: range) -> np.ndarray:
        """(len(ys), len(xs)) zero-mean normalised cross-correlation of `template` placed with its top-left corner
        at every (y, x) of this level (positions must keep it inside the picture)."""
        th, tw = template.shape
        pixels = self.level(level)
        integral, integral_sq = self.integrals(level)
        picture = pixels[ys.start : ys.stop - 1 + th, xs.start : xs.stop - 1 + tw]
        centred64 = template.astype(np.float64) - template.mean(dtype=np.float64)  # sums to zero in float64
        norm = float(np.sqrt((centred64 * centred64).sum()))
        if norm < 1e-6:
            return np.full((len(ys), len(xs)), -1.0)
        centred = centred64.astype(pixels.dtype)
        products = np.einsum("ijkl,kl->ij", sliding_window_view(picture, (th, tw)), centred)
        s1, s2 = _box_sums(integral, ys, xs, th, tw), _box_sums(integral_sq, ys, xs, th, tw)
        variance = s2 - s1 * s1 / (th * tw)
        flat = variance <= 1e-3 * th * tw  # a plain window: no correlation to speak of
        return np.where(flat, 0.0, products / (np.sqrt(np.maximum(variance, 1e-6)) * norm))

    def as_large(self, sizes: Sizes) -> tuple[np.ndarray, np.ndarray]:
        """At the first level, as the picture searched in: its spectrum (complex64), and (k, side, side) float32 the
        deviation of every window of each size (height, width) in `sizes` (its square root of the summed squared
        deviations from its mean; inf where the window would leave the picture)."""
        fill_as_large([self], sizes)
        return self._as_large[sizes]

    def as_small(self, sizes: Sizes) -> np.ndarray:
        """At the first level, as the picture searched for: the conjugate spectra of its templates at each size in
        `sizes`, zero-mean and scaled to unit norm, zero-padded to the level's side ((k, side, side // 2 + 1),
        complex64)."""
        fill_as_small([self], sizes)
        return self._as_small[sizes]


def _lacking(pyramids: Sequence[GreyPyramid], has: Callable[[GreyPyramid], bool]) -> list[GreyPyramid]:
    """The pyramids for which `has` is false, each once (a picture meets several others in one search)."""
    return list({id(p): p for p in pyramids if not has(p)}.values())


def fill_levels(pyramids: Sequence[GreyPyramid], level: int) -> None:
    """Each pyramid's `level` where it lacks it."""
    for p in _lacking(pyramids, lambda p: level in p._levels):
        grey = p._grey_at(LEVELS[level])
        # float32 pixels for the refinements' products (twice as fast); their integrals stay float64 (sums of squares
        # over a 128 px window reach 1e9, past float32's exact range)
        p._levels[level] = grey if level == 0 else grey.astype(np.float32)


def fill_integrals(pyramids: Sequence[GreyPyramid], level: int) -> None:
    """The integral images of each pyramid's `level` where it lacks them, all of them in one stack: sums of whole grey
    levels, exact in float64 in any order."""
    missing = _lacking(pyramids, lambda p: level in p._integrals)
    if not missing:
        return
    fill_levels(missing, level)
    x = np.stack([p._levels[level] for p in missing], dtype=np.float64)
    integrals, integrals_sq = _integral(x), _integral(x * x)
    for k, p in enumerate(missing):
        p._integrals[level] = (integrals[k], integrals_sq[k])


def fill_as_large(pyramids: Sequence[GreyPyramid], sizes: Sizes) -> None:
    """GreyPyramid.as_large of every pyramid lacking it, as one stack."""
    missing = _lacking(pyramids, lambda p: sizes in p._as_large)
    if not missing:
        return
    fill_integrals(missing, 0)
    pixels = np.stack([p._levels[0] for p in missing])
    integral = np.stack([p._integrals[0][0] for p in missing])
    integral_sq = np.stack([p._integrals[0][1] for p in missing])
    side = pixels.shape[-1]
    # float32 (each window's deviation computed in float64, rounded on assignment): the coarse level only ranks
    # placements against MIN_CORRELATION (its FFT 2.5x as fast)
    deviation = np.full((len(missing), len(sizes), side, side), np.inf, dtype=np.float32)
    for k, (height, width) in enumerate(sizes):
        ys, xs = range(side - height + 1), range(side - width + 1)
        s1 = _box_sums(integral, ys, xs, height, width)
        s2 = _box_sums(integral_sq, ys, xs, height, width)
        deviation[:, k, : len(ys), : len(xs)] = np.sqrt(np.maximum(s2 - s1 * s1 / (height * width), 1e-6))
    spectra = scipy.fft.rfft2(pixels.astype(np.float32))
    for k, p in enumerate(missing):
        p._as_large[sizes] = (spectra[k], deviation[k])


def fill_as_small(pyramids: Sequence[GreyPyramid], sizes: Sizes) -> None:
    """GreyPyramid.as_small of every pyramid lacking it, as one stack."""
    missing = _lacking(pyramids, lambda p: sizes in p._as_small)
    if not missing:
        return
    fill_levels(missing, 0)
    pixels = np.stack([p._levels[0] for p in missing])
    side = LEVELS[0]
    templates = np.zeros((len(missing), len(sizes), side, side))
    for k, (height, width) in enumerate(sizes):
        template = _templates(pixels, width, height)
        centred = template - template.reshape(len(missing), -1).mean(axis=1)[:, None, None]
        norm = np.sqrt((centred * centred).reshape(len(missing), -1).sum(axis=1))[:, None, None]
        templates[:, k, :height, :width] = np.where(norm > 1e-6, centred / np.where(norm > 1e-6, norm, 1.0), 0.0)
    spectra = np.conj(scipy.fft.rfft2(templates.astype(np.float32)))
    for k, p in enumerate(missing):
        p._as_small[sizes] = spectra[k]


def _templates(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., height, width): pictures (..., side, side) area-resampled."""
    side = pixels.shape[-1]
    return _area_matrix(height, side, pixels.dtype) @ pixels @ _area_matrix(width, side, pixels.dtype).T


# (height, width) of the window sizes one coarse search tries, largest first
Sizes = tuple[tuple[int, int], ...]


@functools.lru_cache(maxsize=1024)
def _area_matrix(n_out: int, n_in: int, dtype=np.float64) -> np.ndarray:
    """(n_out, n_in): area resampling, output pixel i the mean of the input span [i, i + 1) * n_in / n_out."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    left, right = edges[:-1, None], edges[1:, None]
    columns = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, columns + 1) - np.maximum(left, columns), 0.0, None)
    matrix = (overlap / overlap.sum(axis=1, keepdims=True)).astype(dtype)
    matrix.setflags(write=False)
    return matrix


def _integral(x: np.ndarray) -> np.ndarray:
    """Integral images of (..., h, w) pictures: (..., h + 1, w + 1), a zero first row and column."""
    out = np.zeros((*x.shape[:-2], x.shape[-2] + 1, x.shape[-1] + 1))
    out[..., 1:, 1:] = x
    return out.cumsum(-2).cumsum(-1)


def _box_sums(c: np.ndarray, ys: range, xs: range, th: int, tw: int) -> np.ndarray:
    """Sums of the th x tw boxes with top-left corners at ys x xs, from integral images (..., h + 1, w + 1)."""
    y0, x0 = slice(ys.start, ys.stop), slice(xs.start, xs.stop)
    y1, x1 = slice(ys.start + th, ys.stop + th), slice(xs.start + tw, xs.stop + tw)
    return c[..., y1, x1] - c[..., y0, x1] - c[..., y1, x0] + c[..., y0, x0]
