"""Multi-index hashing building blocks (Norouzi et al. 2012), shared by catalog-scale candidate generation
(gateway.catalog_dedup) and the placeholder library's nearest-hash index (gateway.hash_index).

A 64-bit hash is cut into `bands` bands of 64/bands bits. Rows are bucketed by band value (rows sorted by it, with
bucket starts and counts); a query probes, in a band, the buckets of every value within a radius of its own. By
pigeonhole, two hashes whose every band differs in more than r bits are at least bands * (r + 1) bits apart, so
probing radius r in every band finds every pair within `guaranteed_distance(bands, r)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from itertools import combinations

import numpy as np

HASH_BITS = 64
# (query, target) pairs expanded at a time: bounds the memory of one step (about 40 bytes a pair).
CANDIDATE_CHUNK = 1 << 21


def guaranteed_distance(bands: int, radius: int) -> int:
    """Largest Hamming distance at which every pair is found when every band is probed within `radius` bits."""
    return bands * (radius + 1) - 1


def radius_for(max_distance: int, bands: int) -> int:
    """Smallest probe radius that finds every pair within `max_distance`."""
    return max(0, max_distance // bands)


def miss_probability(distance: int, bands: int = 4, radius: int = 0) -> float:
    """Chance that a pair at this distance is NOT found, if its differing bits are spread uniformly over the 64
    positions: every band holds more than `radius` of them."""
    width = HASH_BITS // bands
    # Ways to place `distance` differing bits into `bands` bands of `width` with every band holding > radius:
    # polynomial product over bands of sum_{k > radius} C(width, k) x^k, coefficient of x^distance.
    per_band = [math.comb(width, k) if k > radius else 0 for k in range(width + 1)]
    ways = [1]
    for _ in range(bands):
        ways = [
            sum(ways[m] * per_band[s - m] for m in range(len(ways)) if 0 <= s - m <= width)
            for s in range(len(ways) + width)
        ]
    missed = ways[distance] if distance < len(ways) else 0
    return missed / math.comb(HASH_BITS, distance)


@lru_cache(maxsize=64)
def probe_masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit value with at most `radius` bits set, 0 first (read-only: computed once per layout)."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(width), k)]
    array = np.array(masks, dtype=np.int64)
    array.setflags(write=False)
    return array


def band_keys(hashes: np.ndarray, band: int, width: int) -> np.ndarray:
    """The `band`-th `width`-bit slice of each uint64 hash (band 0 = the most significant bits), as intp."""
    shift = np.uint64(HASH_BITS - width * (band + 1))
    return ((hashes >> shift) & np.uint64((1 << width) - 1)).astype(np.intp)


def bucket_table(keys: np.ndarray, width: int, dtype=np.intp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row order sorted by key, stable; bucket start in that order per key value; bucket size per key value)."""
    order = np.argsort(keys, kind="stable").astype(dtype, copy=False)
    counts = np.bincount(keys, minlength=1 << width).astype(dtype, copy=False)
    starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(dtype, copy=False)
    return order, starts, counts


def expand(lo: np.ndarray, counts: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(query, target) positions for query q and every target in [lo[q], lo[q] + counts[q]), in chunks of about
    CANDIDATE_CHUNK pairs (a single query with more targets makes one larger chunk)."""
    ends = np.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    start_q = 0
    while start_q < len(counts) and total:
        done = int(ends[start_q - 1]) if start_q else 0
        stop_q = int(np.searchsorted(ends, done + CANDIDATE_CHUNK, side="right"))
        stop_q = max(stop_q, start_q + 1)
        c = counts[start_q:stop_q]
        size = int(c.sum())
        if size:
            queries = np.repeat(np.arange(start_q, stop_q), c)
            offsets = np.arange(size) - np.repeat(np.cumsum(c) - c, c)
            yield queries, np.repeat(lo[start_q:stop_q], c) + offsets
        start_q = stop_q
