"""The two distances of duplicate detection: Hamming between 64-bit hashes, chi-square between colour histograms.

One formula each, used by the gateway, catalog-scale clustering, the placeholder library and the evaluation alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Bits set in every 16-bit value: numpy < 2 has no bitwise_count; a quarter-word lookup is faster than SWAR there.
_POPCOUNT16 = np.array([value.bit_count() for value in range(1 << 16)], dtype=np.uint8)
_BYTE_SUM = np.uint32(0x01010101)
CHI2_EPS = 1e-10  # keeps empty bins (0 / 0) at 0
_CHI2_CHUNK = 2048  # rows of float64 bins per temporary: cache-sized


def popcount64(words: np.ndarray) -> np.ndarray:
    """Bits set in each uint64, as uint8 of the same shape (at least one dimension)."""
    x = np.ascontiguousarray(words, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    quarters = _POPCOUNT16[x.view(np.uint16)].view(np.uint32)  # 4 counts of <= 16 in the 4 bytes of one uint32
    quarters *= _BYTE_SUM  # the top byte becomes the sum of the four
    quarters >>= np.uint32(24)
    return quarters.astype(np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between uint64 hashes (broadcasting: a[:, None] against b[None, :] gives the matrix)."""
    return popcount64(np.asarray(a, dtype=np.uint64) ^ np.asarray(b, dtype=np.uint64))


def _chi2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """0.5 * sum((a - b)^2 / (a + b + eps)) per row, float64, in place on the float64 copies it makes."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    diff = a - b
    np.square(diff, out=diff)
    a += b
    a += CHI2_EPS
    diff /= a
    return 0.5 * diff.sum(axis=-1)


def chi2_pairs(hist: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Chi-square distance between hist[i[k]] and hist[j[k]] for every k."""
    return _in_chunks(len(i), lambda rows: _chi2(hist[i[rows]], hist[j[rows]]))


def chi2_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chi-square distance between a[k] and b[k] for every row k."""
    return _in_chunks(len(a), lambda rows: _chi2(a[rows], b[rows]))


def _in_chunks(n: int, chi2_of: Callable[[slice], np.ndarray]) -> np.ndarray:
    """chi2_of over cache-sized row chunks (3x faster than one expression over all rows)."""
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHI2_CHUNK):
        rows = slice(start, start + _CHI2_CHUNK)
        out[rows] = chi2_of(rows)
    return out


def chi2_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square distance of two histograms: 0 for equal ones, 1 for disjoint normalised ones."""
    return float(_chi2(np.asarray(a)[None], np.asarray(b)[None])[0])
