"""Perceptual hashes and colour histograms for duplicate detection.

Inputs are the small RGB thumbnails Triton returns (128x128, aspect squashed). `phash` and `dhash` reproduce the
`imagehash` package bit for bit (same PIL resampling, same DCT, same bit order), so thresholds tuned with
`imagehash` carry over. Hashes are 64-bit ints whose most significant bit is the first element of imagehash's
row-major bool array: `bin(a ^ b).count("1") == imagehash_a - imagehash_b`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fftpack
from PIL import Image, ImageFilter

from gateway.categories import DedupThresholds

HASH_SIZE = 8
PHASH_HIGHFREQ_FACTOR = 4
HUE_BINS, SAT_BINS, VAL_BINS = 8, 4, 4
HSV_HIST_BINS = HUE_BINS * SAT_BINS * VAL_BINS
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


def hsv_histogram(img: Image.Image) -> np.ndarray:
    """Joint HSV histogram, 8 hue x 4 saturation x 4 value bins (128), float32 summing to 1.

    Grey-level hashes are blind to colour; this is what tells two colourways of one product apart.
    """
    hsv = np.asarray(img.convert("RGB").convert("HSV")).astype(np.intp)
    hue = hsv[..., 0] * HUE_BINS // 256
    sat = hsv[..., 1] * SAT_BINS // 256
    val = hsv[..., 2] * VAL_BINS // 256
    bins = (hue * SAT_BINS + sat) * VAL_BINS + val
    counts = np.bincount(bins.ravel(), minlength=HSV_HIST_BINS).astype(np.float32)
    return counts / counts.sum()


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
    img = _as_image(thumb)
    histogram = hsv_histogram(img)
    histogram.setflags(write=False)
    return ImageHashes(phash=phash(img), dhash_edge=dhash_edge(img), hsv_hist=histogram)


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
