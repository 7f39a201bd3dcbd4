"""Duplicate detection over a catalog slice (1e5 images and more): hash vectors in numpy, no Python loop over pairs.

The rule is gateway.hashing's (all three signals agree). `duplicate_pairs` generates candidate pairs with multi-index
hashing on the 64-bit pHash (gateway.hashing.bands), verifies the rule on the candidates in vectorised chunks
(gateway.hashing.verify_pairs), and `cluster` turns the pairs into clusters (connected components, or the gateway's
leader clustering).

Candidate generation. The pHash is cut into `bands` bands of 64/bands bits. Each image probes, in every band, the
bucket of its own band value and the buckets of every value within Hamming `radius` of it, so every pair within
`guaranteed_distance(bands, radius)` is found. With radius 0 (plain LSH banding, 4 bands of 16 bits) that is d <= 3;
pairs further apart are found only when their differing bits happen to leave one band untouched (`miss_probability`
gives the chance, with the bits spread uniformly). `radius_for(max_distance, bands)` is the smallest radius that
finds every pair within the threshold: exact, but it probes sum_{k<=r} C(64/bands, k) buckets per band instead of one.

Python loops run over bands, probe masks, chunks and clustering rounds, never over pairs or images. Time and memory
at 1e5 images, and recall against brute force: `python -m loadtest.cluster_scale` (numbers in BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from contract.categories import DedupThresholds
from gateway.hashing import HASH_BITS, HashVectors, hamming, radius_for, verify_pairs
from gateway.hashing.bands import band_keys, bucket_table, expand, probe_masks

# ------------------------------------------------------------------------------------------ candidate generation


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
    masks = probe_masks(width, radius)
    for band in range(bands):
        keys = band_keys(h, band, width)
        order, starts, counts = bucket_table(keys, width)
        sorted_keys = keys[order]
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
            for queries, targets in expand(lo, hits):
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
        # candidates: the later images within the pHash threshold (a dense row block is cheap); the rule decides
        close = hamming(v.phash[rows, None], v.phash[None, :]) <= t.phash_max_distance
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
    closeness: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster n images given their duplicate pairs: (n,) int64, each image's representative (itself for one).

    `rank`: lower is better (the gateway's representative_key order); default and ties: input order.
    `closeness`: per pair, gateway.hashing.rule_closeness of (i, j); None counts every pair alike.
    - "leader": gateway.decisions.cluster_duplicates' rule: images in rank order, each joins the leader it
      duplicates most closely (ties: the best-ranked) or leads a new cluster. No chains: A~B and B~C with A!~C
      leave C on its own when B joined A.
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
    closeness = np.zeros(len(i)) if closeness is None else np.asarray(closeness, dtype=np.float64)
    if len(closeness) != len(i):
        raise ValueError(f"closeness has {len(closeness)} entries for {len(i)} pairs")
    distinct = i != j
    i, j, closeness = i[distinct], j[distinct], closeness[distinct]
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
    # Each member joins its closest leader neighbour, ties the best-ranked (one exists: that is why it is a member).
    joins = leader[better] & ~leader[worse]
    member, by = worse[joins], better[joins]
    order = np.lexsort((rank[by], closeness[joins], member))
    first = np.ones(len(order), dtype=bool)
    first[1:] = member[order][1:] != member[order][:-1]
    representative[member[order][first]] = by[order][first]
    return representative
