"""Perceptual hashes of the small RGB thumbnails the preprocess model makes (128x128, aspect squashed), and
`hash_features`, everything duplicate detection needs about one image. The cpu profile's preprocess model computes
them inside Triton (its PHASH, DHASH_EDGE and HSV_HIST outputs); where a profile does not, the gateway computes the
same from THUMB (gateway.hashing.compute_hashes), so either way one copy of the code makes them.

`phash` and `dhash` reproduce the `imagehash` package bit for bit (same PIL resampling, same DCT, same bit order), so
thresholds tuned with `imagehash` carry over. Hashes are 64-bit ints whose most significant bit is the first element
of imagehash's row-major bool array: `bin(a ^ b).count("1") == imagehash_a - imagehash_b`.

Framing, which a supplier's re-export changes without changing the picture (measured on labelled pairs of real
product photos, `python -m evaluation.dedup`, numbers in BENCHMARKS.md): both hashes are taken on the content box,
the foreground's extent (preprocessing.foreground) with 2% of its mass cut on each side, located to a fraction of a
pixel and resampled to a square, so whitespace padding, a square canvas and a few percent of border crop move the
hashes little, and a small corner watermark moves the box by about a pixel. Known limit: on a nearly left-right
symmetric product the odd DCT terms are near zero, so even that shift flips a few pHash bits (10 measured in
tests/gateway/hashing/test_perceptual.py). The colour histogram (preprocessing.colour) handles tone.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fftpack
from PIL import Image

from preprocessing.colour import MIN_FOREGROUND_PIXELS, colour_histogram
from preprocessing.foreground import duplicate_mask, foreground_mask

HASH_SIZE = 8
PHASH_HIGHFREQ_FACTOR = 4
# The content box keeps the foreground's mass between these quantiles along each axis.
CONTENT_QUANTILE = 0.02
MIN_CONTENT_SIDE = 8
CONTENT_SIDE = 128  # the content box is resampled to this square before hashing (the thumbnail's own size)
# Bump when hash_features makes different outputs of the same thumbnail: caches of hashes key by it.
# 2: the colour histogram on duplicate detection's own foreground mask (preprocessing.foreground.duplicate_mask).
HASH_VERSION = 2


def _pack_bits(bits: np.ndarray) -> int:
    """Row-major bool array -> int, first element as most significant bit (imagehash's hex order)."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def phash(img: Image.Image) -> int:
    """imagehash.phash(img) (hash_size 8, highfreq_factor 4) as a 64-bit int."""
    return _phash_of_grey(img.convert("L"))


def _phash_of_grey(grey: Image.Image) -> int:
    size = HASH_SIZE * PHASH_HIGHFREQ_FACTOR
    pixels = np.asarray(grey.resize((size, size), Image.Resampling.LANCZOS))
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low_frequencies = dct[:HASH_SIZE, :HASH_SIZE]
    return _pack_bits(low_frequencies > _median(low_frequencies))


def _median(values: np.ndarray) -> float:
    """np.median(values) (an even count: (a + b) / 2 of the middle two, as its mean computes it) from a sort of the
    64 values, without np.median's partition and NaN checks (a DCT of pixels has no NaN)."""
    ordered = np.sort(values, axis=None)
    middle = ordered.size // 2
    return ordered[middle] if ordered.size % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def dhash(img: Image.Image) -> int:
    """imagehash.dhash(img) (hash_size 8, horizontal gradients) as a 64-bit int."""
    return _dhash_of_grey(img.convert("L"))


def _dhash_of_grey(grey: Image.Image) -> int:
    pixels = np.asarray(grey.resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.LANCZOS))
    return _pack_bits(pixels[:, 1:] > pixels[:, :-1])


def dhash_edge(img: Image.Image) -> int:
    """dHash of the edge-enhanced grey image.

    Why edges: outlines survive JPEG recompression, rescaling and global brightness/contrast changes, so true
    re-encodes keep the same bits, while a shot with extra fine detail (a stylus beside a tablet, a flash spot)
    changes local gradients. It is a gradient vote independent of pHash's low-frequency DCT vote. Its reach is
    limited: EDGE_ENHANCE_MORE keeps the mean, and the 9x8 downsample averages most added detail away, so on
    synthetic tests it behaves close to a plain dHash; small changes are mostly caught by pHash or the histogram.
    """
    return _dhash_edge_of_grey(img.convert("L"))


def _dhash_edge_of_grey(grey: Image.Image) -> int:
    return _dhash_of_grey(_edge_enhanced_more(grey))


def _edge_enhanced_more(grey: Image.Image) -> Image.Image:
    """grey.filter(ImageFilter.EDGE_ENHANCE_MORE) bit for bit, in less than half its time. The kernel is -1 around a
    centre of 9 (scale 1, offset 0): sums of small integers, which PIL's float accumulation holds exactly, so an inner
    pixel becomes 10 c - (its 3x3 box sum), clipped to 0..255, and the outermost rows and columns stay as they were
    (all of a picture under 3 px). Tests pin it to PIL's filter."""
    pixels = np.asarray(grey)
    wide = pixels.astype(np.int16)
    rows = wide[:-2] + wide[1:-1] + wide[2:]
    box = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    out = pixels.copy()
    out[1:-1, 1:-1] = np.clip(10 * wide[1:-1, 1:-1] - box, 0, 255)
    return Image.fromarray(out)


def content_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """PIL box (left, top, right, bottom) in sub-pixel coordinates: the foreground with CONTENT_QUANTILE of its mass
    cut on each side along each axis (mass spread evenly inside each pixel); the whole picture when the foreground is
    (nearly) empty or the box would be tiny. Sub-pixel, because a box rounded to whole pixels of a 128 px thumbnail
    can move by a pixel between two encodings, and that shift alone flipped 24 pHash bits of a symmetric product."""
    height, width = mask.shape
    whole = (0.0, 0.0, float(width), float(height))
    if np.count_nonzero(mask) < MIN_FOREGROUND_PIXELS:
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


def _as_rgb(thumb: np.ndarray | Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The thumbnail as an RGB image and as its (h, w, 3) uint8 pixels. A uint8 HxWx3 array (what Triton returns)
    is used as it is: no RGB conversion and no copy back out of the image."""
    if isinstance(thumb, Image.Image):
        img = thumb.convert("RGB")
    else:
        array = np.asarray(thumb)
        if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
            raise ValueError(f"thumbnail must be uint8 HxWx3 (or HxW), got {array.dtype} {array.shape}")
        if array.ndim == 3:
            return Image.fromarray(array), array
        img = Image.fromarray(array).convert("RGB")
    return img, np.asarray(img)


def whole_phash(thumb: np.ndarray | Image.Image) -> int:
    """pHash of the whole thumbnail, no content box: the placeholder library's second key for each known placeholder.
    A supplier who re-serves a placeholder whose page is not white (or darkened, or a washed-out copy) inside a white
    pad moves the query's content box from the placeholder's drawing to its whole page, which this key matches
    (known variants 0.656 -> 0.944 with both keys, BENCHMARKS.md "Placeholder library: the whole-picture key")."""
    return phash(_as_rgb(thumb)[0])


def hash_features(thumb: np.ndarray | Image.Image, mask: np.ndarray | None = None) -> tuple[int, int, np.ndarray]:
    """(pHash, dHash-edge, colour histogram): both hashes of the content box (resampled to CONTENT_SIDE square) of
    the foreground, the histogram of the foreground that follows the picture's contrast
    (preprocessing.foreground.duplicate_mask: most pictures' is the same mask). `mask`: the thumbnail's
    foreground_mask, when the caller has it already (the preprocess model shares it with the object box).
    The hashes keep the fixed-tolerance mask: the placeholder library matches pHash alone, and its recall on
    resized / re-encoded / padded variants fell 88 -> 80 of 120 with the content box on the other mask."""
    features = StagedFeatures(thumb, mask)
    phash, dhash_edge = features.hashes
    return phash, dhash_edge, features.histogram


class StagedFeatures:
    """hash_features of one thumbnail in two stages, each made on first use: the hashes (~0.7 ms with the foreground
    mask on the 2-core VM of BENCHMARKS.md), then the colour histogram (~1.2 ms there, more than both hashes), for a
    caller that can stop after the hashes (the gateway's framing rescue of crop and pad copies compares a window's
    hashes before its colours)."""

    def __init__(self, thumb: np.ndarray | Image.Image, mask: np.ndarray | None = None):
        self._img, self._rgb = _as_rgb(thumb)
        self._mask = foreground_mask(self._rgb) if mask is None else mask

    @functools.cached_property
    def hashes(self) -> tuple[int, int]:
        """(pHash, dHash-edge) of the foreground's content box."""
        content = self._img.resize((CONTENT_SIDE, CONTENT_SIDE), Image.Resampling.LANCZOS, box=content_box(self._mask))
        grey = content.convert("L")  # once for both hashes (phash and dhash_edge of `content` each convert it)
        return _phash_of_grey(grey), _dhash_edge_of_grey(grey)

    @functools.cached_property
    def histogram(self) -> np.ndarray:
        """The foreground's colour histogram (read-only)."""
        histogram = colour_histogram(self._rgb, duplicate_mask(self._rgb, self._mask))
        histogram.setflags(write=False)
        return histogram
