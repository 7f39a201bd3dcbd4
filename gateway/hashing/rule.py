"""The duplicate rule, written once: two images are duplicates only when all three signals agree, pHash Hamming
<= phash_max_distance, edge-dHash Hamming <= dhash_edge_max_distance and HSV-histogram chi-square <= hsv_chi2_max.

`within_thresholds` applies it to distances; `verify_pairs` to pairs of images given by index, `duplicate_matrix` to
every pair of one product's images. The gateway, catalog-scale clustering and the evaluation all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from contract.categories import DedupThresholds
from gateway.hashing.distances import chi2_pairs, hamming
from preprocessing.perceptual import hash_features

# A signal's distances: one per pair, or a function giving the distances of the pairs at the positions it is passed.
Distances = np.ndarray | Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class ImageHashes:
    """Everything duplicate detection needs about one image (eq=False: the ndarray field has no boolean ==)."""

    phash: int
    dhash_edge: int
    hsv_hist: np.ndarray


def compute_hashes(thumb) -> ImageHashes:
    """preprocessing.perceptual.hash_features of a thumbnail (uint8 HxWx3 array or PIL image) as ImageHashes: what
    the cpu profile's preprocess model returns as PHASH, DHASH_EDGE and HSV_HIST, for profiles that do not."""
    return ImageHashes(*hash_features(thumb))


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
    def from_hashes(cls, hashes: Sequence[ImageHashes]) -> HashVectors:
        """From ImageHashes objects (anything with phash, dhash_edge, hsv_hist)."""
        if not hashes:
            return cls.of(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros((0, 1), np.float32))
        return cls.of([h.phash for h in hashes], [h.dhash_edge for h in hashes], np.stack([h.hsv_hist for h in hashes]))

    def __len__(self) -> int:
        return len(self.phash)

    def take(self, rows: np.ndarray) -> HashVectors:
        return HashVectors(self.phash[rows], self.dhash_edge[rows], self.hsv_hist[rows])


def within_thresholds(
    t: DedupThresholds, phash_distance: np.ndarray, edge_distance: Distances, hsv_chi2: Distances
) -> np.ndarray:
    """(n,) bool over n pairs: all three distances within the thresholds `t`.

    The pHash distances are given for every pair, as an (n,) array; the other two signals may be functions, called
    only for the pairs every earlier signal accepted (cheapest first), so the chi-square of a pair whose hashes
    differ is never computed.
    """
    phash_distance = np.asarray(phash_distance)
    accepted = np.flatnonzero(phash_distance <= t.phash_max_distance)
    for distances, limit in ((edge_distance, t.dhash_edge_max_distance), (hsv_chi2, t.hsv_chi2_max)):
        if accepted.size:
            values = distances(accepted) if callable(distances) else np.asarray(distances)[accepted]
            accepted = accepted[values <= limit]
    duplicate = np.zeros(len(phash_distance), dtype=bool)
    duplicate[accepted] = True
    return duplicate


def verify_pairs(v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds) -> np.ndarray:
    """Bool per pair (i[k], j[k]) of images of `v`: the duplicate rule."""
    return within_thresholds(
        t,
        hamming(v.phash[i], v.phash[j]),
        lambda k: hamming(v.dhash_edge[i[k]], v.dhash_edge[j[k]]),
        lambda k: chi2_pairs(v.hsv_hist, i[k], j[k]),
    )


def rule_closeness(v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds) -> np.ndarray:
    """Float per pair (i[k], j[k]) of images of `v`: how far apart the two are inside the duplicate rule, as the
    largest share of its threshold that any of the three distances uses (<= 1 for a duplicate pair, 0 for identical
    hashes). Which of several duplicates an image is nearest to."""
    i, j = np.asarray(i), np.asarray(j)
    shares = (
        hamming(v.phash[i], v.phash[j]) / max(t.phash_max_distance, 1),
        hamming(v.dhash_edge[i], v.dhash_edge[j]) / max(t.dhash_edge_max_distance, 1),
        chi2_pairs(v.hsv_hist, i, j) / max(t.hsv_chi2_max, 1e-9),
    )
    return np.max(np.stack([np.asarray(share, dtype=np.float64) for share in shares]), axis=0)


def duplicate_matrix(v: HashVectors, t: DedupThresholds) -> np.ndarray:
    """(n, n) bool, symmetric, diagonal True: the duplicate rule for every pair of one product's images."""
    n = len(v)
    i, j = np.triu_indices(n, 1)
    duplicate = verify_pairs(v, i, j, t)
    matrix = np.eye(n, dtype=bool)
    matrix[i[duplicate], j[duplicate]] = True
    matrix[j[duplicate], i[duplicate]] = True
    return matrix
