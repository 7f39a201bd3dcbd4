"""Duplicate detection over many images at once: hash vectors in numpy, no Python loop over pairs.

The rule is the gateway's (gateway.hashing.duplicate_matrix): two images are duplicates only when all three signals
agree, pHash Hamming <= phash_max_distance, edge-dHash Hamming <= dhash_edge_max_distance and HSV-histogram
chi-square <= hsv_chi2_max. This module applies it at two scales:

- one product (up to a few hundred images): `duplicate_matrix` computes the two Hamming matrices densely (cheap) and
  the chi-square only for the pairs whose two hashes already agree, instead of for all n^2 pairs;
- a catalog slice (1e5 images and more): `duplicate_pairs` generates candidate pairs with multi-index hashing on the
  64-bit pHash, verifies the three conditions on the candidates in vectorised chunks, and `cluster` turns the pairs
  into clusters (connected components, or the gateway's leader clustering).

Candidate generation (multi-index hashing, Norouzi et al. 2012). The pHash is cut into `bands` bands of 64/bands bits.
Each image probes, in every band, the bucket of its own band value and the buckets of every value within Hamming
`radius` of it. By pigeonhole, two hashes at distance d that differ in every band by more than `radius` bits have
d >= bands * (radius + 1), so every pair at distance <= bands * (radius + 1) - 1 is found (`guaranteed_distance`).
With radius 0 (plain LSH banding, 4 bands of 16 bits) that is d <= 3; pairs further apart are found only when their
differing bits happen to leave one band untouched (`miss_probability` gives the chance, with the bits spread
uniformly). `radius_for(max_distance, bands)` is the smallest radius that finds every pair within the threshold:
exact, but it probes sum_{k<=r} C(64/bands, k) buckets per band instead of one.

Python loops run over bands, probe masks, chunks and clustering rounds, never over pairs or images. Time and memory
at 1e5 images, and recall against brute force: `python -m loadtest.cluster_scale` (numbers in BENCHMARKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from contract.categories import DedupThresholds

HASH_BITS = 64
# Candidate pairs expanded and verified at a time: bounds the memory of one step (about 40 bytes a pair).
CANDIDATE_CHUNK = 1 << 21
_CHI2_EPS = 1e-10  # as gateway.hashing.chi2_distance
_CHI2_CHUNK = 2048  # rows of 128 float64 bins: 2 MB a temporary
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@dataclass(frozen=True)
class HashVectors:
    """The hashes of n images as arrays: phash and dhash_edge (n,) uint64, hsv_hist (n, k) float32."""

    phash: np.ndarray
    dhash_edge: np.ndarray
    hsv_hist: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.phash)
        if len(self.dhash_edge) != n or self.hsv_hist.ndim != 2 or self.hsv_hist.shape[0] != n:
            raise ValueError(
                f"hash vectors disagree on n: phash {len(self.phash)}, dhash_edge {len(self.dhash_edge)}, "
                f"hsv_hist {self.hsv_hist.shape}"
            )

    @classmethod
    def of(cls, phash, dhash_edge, hsv_hist) -> HashVectors:
        return cls(np.asarray(phash, dtype=np.uint64), np.asarray(dhash_edge, dtype=np.uint64), np.asarray(hsv_hist))

    @classmethod
    def from_hashes(cls, hashes: Sequence) -> HashVectors:
        """From gateway.hashing.ImageHashes objects (anything with phash, dhash_edge, hsv_hist)."""
        if not hashes:
            return cls.of(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros((0, 1), np.float32))
        return cls.of([h.phash for h in hashes], [h.dhash_edge for h in hashes], np.stack([h.hsv_hist for h in hashes]))

    def __len__(self) -> int:
        return len(self.phash)

    def take(self, rows: np.ndarray) -> HashVectors:
        return HashVectors(self.phash[rows], self.dhash_edge[rows], self.hsv_hist[rows])


def popcount64(words: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 (SWAR; numpy < 2 has no bitwise_count), as uint8."""
    x = np.asarray(words, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(np.uint8)


def chi2_pairs(hist: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Chi-square distance between hist[i[k]] and hist[j[k]] for every k, float64, bit for bit
    gateway.hashing.chi2_distance; in cache-sized chunks with in-place arithmetic (3x faster than one expression)."""
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), _CHI2_CHUNK):
        a = hist[i[start : start + _CHI2_CHUNK]].astype(np.float64)
        b = hist[j[start : start + _CHI2_CHUNK]].astype(np.float64)
        diff = a - b
        np.square(diff, out=diff)
        a += b
        a += _CHI2_EPS
        diff /= a
        out[start : start + _CHI2_CHUNK] = 0.5 * diff.sum(axis=-1)
    return out


def verify_pairs(v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds) -> np.ndarray:
    """Bool mask over the pairs (i[k], j[k]): all three conditions hold. Cheapest test first; the chi-square runs
    only on pairs whose two hashes agree."""
    keep = popcount64(v.phash[i] ^ v.phash[j]) <= t.phash_max_distance
    idx = np.flatnonzero(keep)
    if idx.size:
        ok = popcount64(v.dhash_edge[i[idx]] ^ v.dhash_edge[j[idx]]) <= t.dhash_edge_max_distance
        idx = idx[ok]
    if idx.size:
        ok = chi2_pairs(v.hsv_hist, i[idx], j[idx]) <= t.hsv_chi2_max
        keep[:] = False
        keep[idx[ok]] = True
    else:
        keep[:] = False
    return keep


def duplicate_matrix(v: HashVectors, t: DedupThresholds) -> np.ndarray:
    """(n, n) bool, diagonal True: gateway.hashing.duplicate_matrix, computed sparsely for one product's images.

    The Hamming matrices are dense (n^2 uint64 ops); the chi-square, which costs k float ops a pair, runs only on
    the pairs both hashes accept.
    """
    n = len(v)
    duplicates = popcount64(v.phash[:, None] ^ v.phash[None, :]) <= t.phash_max_distance
    duplicates &= popcount64(v.dhash_edge[:, None] ^ v.dhash_edge[None, :]) <= t.dhash_edge_max_distance
    i, j = np.nonzero(np.triu(duplicates, 1))
    duplicates[:] = False
    if i.size:
        ok = chi2_pairs(v.hsv_hist, i, j) <= t.hsv_chi2_max
        duplicates[i[ok], j[ok]] = True
        duplicates[j[ok], i[ok]] = True
    duplicates[np.arange(n), np.arange(n)] = True
    return duplicates


# ------------------------------------------------------------------------------------------ candidate generation


def guaranteed_distance(bands: int, radius: int) -> int:
    """Largest pHash Hamming distance at which every pair is a candidate (pigeonhole)."""
    return bands * (radius + 1) - 1


def radius_for(max_distance: int, bands: int) -> int:
    """Smallest probe radius that makes every pair within `max_distance` a candidate."""
    return max(0, max_distance // bands)


def miss_probability(distance: int, bands: int = 4, radius: int = 0) -> float:
    """Chance that a pair at this pHash distance is NOT a candidate, if its differing bits are spread uniformly
    over the 64 positions: every band holds more than `radius` of them."""
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


def _probe_masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit value with at most `radius` bits set, 0 first."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(width), k)]
    return np.array(masks, dtype=np.int64)


def _expand(lo: np.ndarray, counts: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
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


def candidate_pairs(phash: np.ndarray, bands: int = 4, radius: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of candidate pairs (i, j), i != j: pHashes within `radius` bits of each other in at least one band.

    Within one band every unordered pair comes once; a pair close in several bands comes once per such band (the
    caller removes repeats after verification, when few pairs are left).
    """
    if HASH_BITS % bands or not 3 <= HASH_BITS // bands <= 24:
        raise ValueError(f"bands must divide 64 into bands of 3..24 bits, got {bands}")
    width = HASH_BITS // bands
    if not 0 <= radius <= width:
        raise ValueError(f"radius must be in 0..{width}, got {radius}")
    h = np.asarray(phash, dtype=np.uint64)
    n = len(h)
    if n < 2:
        return
    masks = _probe_masks(width, radius)
    for band in range(bands):
        keys = ((h >> np.uint64(HASH_BITS - width * (band + 1))) & np.uint64((1 << width) - 1)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        counts = np.bincount(sorted_keys, minlength=1 << width)
        starts = np.cumsum(counts) - counts
        for mask in masks:
            if mask == 0:
                # Same bucket: position p pairs with the later positions of its bucket.
                positions = np.arange(n)
                lo = positions + 1
                hits = starts[sorted_keys] + counts[sorted_keys] - lo
            else:
                # Neighbouring bucket: probe only from the smaller key, so each pair comes once.
                probes = sorted_keys ^ mask
                positions = np.flatnonzero(probes > sorted_keys)
                lo = starts[probes[positions]]
                hits = counts[probes[positions]]
            for queries, targets in _expand(lo, hits):
                yield order[positions[queries]], order[targets]


def _canonical_unique(i: np.ndarray, j: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    codes = np.unique(lo * n + hi)
    return codes // n, codes % n


@dataclass
class PairStats:
    candidates: int = 0  # candidate pairs verified (with repeats across bands)
    pairs: int = 0  # distinct duplicate pairs found


def duplicate_pairs(
    v: HashVectors,
    t: DedupThresholds,
    *,
    bands: int = 4,
    radius: int | None = 0,
    stats: PairStats | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct duplicate pairs (i < j, sorted) found through candidate generation; radius None picks
    `radius_for(t.phash_max_distance, bands)`, which finds every duplicate pair (exact, slower)."""
    if radius is None:
        radius = radius_for(t.phash_max_distance, bands)
    found_i, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    candidates = 0
    for i, j in candidate_pairs(v.phash, bands, radius):
        candidates += len(i)
        keep = verify_pairs(v, i, j, t)
        found_i.append(i[keep])
        found_j.append(j[keep])
    i, j = _canonical_unique(np.concatenate(found_i), np.concatenate(found_j), len(v))
    if stats is not None:
        stats.candidates, stats.pairs = candidates, len(i)
    return i, j


def brute_force_pairs(v: HashVectors, t: DedupThresholds, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Every duplicate pair (i < j, sorted) by testing all n(n-1)/2 pairs, in row blocks: the reference."""
    n = len(v)
    found_i, found_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        close = popcount64(v.phash[rows, None] ^ v.phash[None, :]) <= t.phash_max_distance
        close &= np.arange(n)[None, :] > rows[:, None]
        r, c = np.nonzero(close)
        i, j = rows[r], c
        keep = verify_pairs(v, i, j, t)
        found_i.append(i[keep])
        found_j.append(j[keep])
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64)


# ------------------------------------------------------------------------------------------------- clustering


def _representatives(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Map component labels to the index of each component's best-ranked (lowest rank) member."""
    order = np.lexsort((rank, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    best_of_label = np.empty(labels.max() + 1 if len(labels) else 0, dtype=np.int64)
    best_of_label[labels[order][first]] = order[first]
    return best_of_label[labels]


def _leaders(n: int, better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """Greedy leader selection in rank order over directed edges better -> worse, in vectorised rounds.

    Sequentially: an image becomes a leader unless a better-ranked leader duplicates it. In rounds: an undecided
    image none of whose better-ranked neighbours is still undecided is decided now (a leader, since a leader
    neighbour would already have made it a member); the worse-ranked neighbours of new leaders become members. The
    best undecided image is always decided, so rounds terminate; their number is the length of the longest
    alternating chain, a handful in practice. Edges between decided images are dropped every round.
    """
    undecided, leader = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    src, dst = better, worse
    while True:
        blocked = np.zeros(n, dtype=bool)
        blocked[dst] = True  # every remaining edge comes from an undecided image
        new_leaders = undecided & ~blocked
        leader |= new_leaders
        undecided &= ~new_leaders
        members = dst[new_leaders[src]]
        undecided[members] = False
        alive = undecided[src] & undecided[dst]
        if not undecided.any():
            return leader
        src, dst = src[alive], dst[alive]


def cluster(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    rank: np.ndarray | None = None,
    method: str = "leader",
) -> np.ndarray:
    """Cluster n images given their duplicate pairs: (n,) int64, each image's representative (itself for one).

    `rank`: lower is better (the gateway's representative_key order); default and ties: input order.
    - "leader": gateway.decisions.cluster_duplicates' rule: images in rank order, each joins the best-ranked leader
      it duplicates or leads a new cluster. No chains: A~B and B~C with A!~C leave C on its own when B joined A.
    - "components": connected components of the duplicate graph (scipy.sparse.csgraph), the best-ranked member
      represents. Chains merge.
    """
    if rank is None:
        rank = np.arange(n)
    elif len(rank) != n:
        raise ValueError(f"rank has {len(rank)} entries for {n} images")
    else:  # a permutation, ties broken by input order
        order = np.argsort(rank, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    distinct = i != j
    i, j = i[distinct], j[distinct]
    if method == "components":
        graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        return _representatives(labels, rank)
    if method != "leader":
        raise ValueError(f"method must be 'leader' or 'components', got {method!r}")
    better = np.where(rank[i] < rank[j], i, j)
    worse = np.where(rank[i] < rank[j], j, i)
    leader = _leaders(n, better, worse)
    representative = np.arange(n)
    # Each member joins its best-ranked leader neighbour (one exists: that is why it is a member).
    joins = leader[better] & ~leader[worse]
    member, by = worse[joins], better[joins]
    order = np.lexsort((rank[by], member))
    first = np.ones(len(order), dtype=bool)
    first[1:] = member[order][1:] != member[order][:-1]
    representative[member[order][first]] = by[order][first]
    return representative
