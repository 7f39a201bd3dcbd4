"""gateway.hashing.rule and .distances: popcount, chi-square, and the one duplicate rule over distances, pairs and
one product's matrix."""

from __future__ import annotations

import numpy as np
import pytest

from contract.categories import DedupThresholds
from gateway.hashing import (
    HashVectors,
    chi2_distance,
    chi2_pairs,
    duplicate_matrix,
    hamming,
    popcount64,
    verify_pairs,
)
from gateway.hashing import distances as distances_module
from gateway.hashing.rule import within_thresholds

T = DedupThresholds(phash_max_distance=10, dhash_edge_max_distance=12, hsv_chi2_max=0.15)


def random_vectors(n: int, seed: int, max_flip: int = 14) -> HashVectors:
    """n images from n // 5 originals, hashes up to max_flip bits and histograms a little apart: pairs straddle T."""
    rng = np.random.default_rng(seed)
    groups = max(1, n // 5)
    source = rng.integers(0, groups, n)

    def near(originals: np.ndarray) -> np.ndarray:
        copies = originals[source]
        for k in range(n):
            for bit in rng.choice(64, int(rng.integers(0, max_flip + 1)), replace=False):
                copies[k] ^= np.uint64(1) << np.uint64(bit)
        return copies

    phash, dhash = (near(rng.integers(0, 2**64, groups, dtype=np.uint64)) for _ in range(2))
    hist = rng.dirichlet(np.full(28, 0.2), groups)[source] + 0.1 * rng.dirichlet(np.full(28, 1.0), n)
    return HashVectors.of(phash, dhash, (hist / hist.sum(axis=1, keepdims=True)).astype(np.float32))


def literal_rule(v: HashVectors, a: int, b: int, t: DedupThresholds) -> bool:
    """The rule spelled out with Python ints, pair by pair."""
    return (
        (int(v.phash[a]) ^ int(v.phash[b])).bit_count() <= t.phash_max_distance
        and (int(v.dhash_edge[a]) ^ int(v.dhash_edge[b])).bit_count() <= t.dhash_edge_max_distance
        and chi2_distance(v.hsv_hist[a], v.hsv_hist[b]) <= t.hsv_chi2_max
    )


@pytest.mark.parametrize(
    "numpy_has_bitwise_count",
    [
        pytest.param(
            True, marks=pytest.mark.skipif(not hasattr(np, "bitwise_count"), reason="numpy < 2: no bitwise_count")
        ),
        False,
    ],
)
def test_popcount_on_either_numpy(monkeypatch, numpy_has_bitwise_count):
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**64, size=(7, 33), dtype=np.uint64)
    words[0, :3] = [0, 2**64 - 1, 1 << 63]
    expected = np.array([[int(w).bit_count() for w in row] for row in words.tolist()])
    if not numpy_has_bitwise_count:  # numpy < 2
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    counts = popcount64(words)
    assert counts.dtype == np.uint8
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(popcount64(words.T), expected.T)  # a strided view


def test_chi2_pairs_over_several_chunks(monkeypatch):
    monkeypatch.setattr(distances_module, "_CHI2_CHUNK", 7)
    rng = np.random.default_rng(2)
    hist = rng.dirichlet(np.full(28, 0.1), 50).astype(np.float32)
    i, j = rng.integers(0, 50, 100), rng.integers(0, 50, 100)
    assert chi2_pairs(hist, i, j).tolist() == [chi2_distance(hist[a], hist[b]) for a, b in zip(i, j)]
    assert chi2_pairs(hist, i, j).tolist() == chi2_pairs(hist, j, i).tolist()  # symmetric, bit for bit
    assert chi2_pairs(hist, np.zeros(0, int), np.zeros(0, int)).shape == (0,)


def test_within_thresholds_needs_all_three_signals():
    t = DedupThresholds(phash_max_distance=4, dhash_edge_max_distance=6, hsv_chi2_max=0.02)
    phash = np.array([4, 5, 0, 0, 4, 0])
    edge = np.array([6, 0, 7, 0, 0, 6])
    chi2 = np.array([0.02, 0.0, 0.0, 0.021, 0.0, 0.0])
    assert within_thresholds(t, phash, edge, chi2).tolist() == [True, False, False, False, True, True]
    assert within_thresholds(t, np.zeros(0), np.zeros(0), np.zeros(0)).shape == (0,)


def test_within_thresholds_computes_later_signals_only_where_earlier_ones_accept():
    t = DedupThresholds(phash_max_distance=4, dhash_edge_max_distance=6, hsv_chi2_max=0.02)
    phash = np.array([0, 9, 0, 0])
    edge = np.array([0, 0, 9, 0])
    asked: dict[str, list[int]] = {}

    def recorded(name, values):
        def distances(positions):
            asked[name] = positions.tolist()
            return values[positions]

        return distances

    result = within_thresholds(t, phash, recorded("edge", edge), recorded("chi2", np.array([0.0, 0.0, 0.0, 0.5])))
    assert result.tolist() == [True, False, False, False]
    assert asked == {"edge": [0, 2, 3], "chi2": [0, 3]}


@pytest.mark.parametrize("seed", [0, 1])
def test_verify_pairs_and_the_matrix_are_the_rule_pair_by_pair(seed):
    v = random_vectors(60, seed)
    for t in (T, DedupThresholds(4, 6, 0.05), DedupThresholds(0, 0, 0.0)):
        expected = np.array([[a == b or literal_rule(v, a, b, t) for b in range(len(v))] for a in range(len(v))])
        assert expected.sum() > len(v) or t.phash_max_distance == 0  # the data has duplicates and non-duplicates
        np.testing.assert_array_equal(duplicate_matrix(v, t), expected)
        i, j = np.nonzero(~np.eye(len(v), dtype=bool))
        np.testing.assert_array_equal(verify_pairs(v, i, j, t), expected[i, j])


def test_matrix_of_nothing_and_of_one():
    assert duplicate_matrix(HashVectors.from_hashes([]), T).shape == (0, 0)
    assert duplicate_matrix(random_vectors(1, 0), T).tolist() == [[True]]


def test_hash_vectors_must_agree_on_n():
    with pytest.raises(ValueError, match="disagree"):
        HashVectors.of([1, 2], [1], np.zeros((2, 3)))


def test_hamming_of_one_query_to_many_matches_python_popcount():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=50, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    query = int(hashes[7]) ^ 0b1011
    expected = [bin(query ^ int(h)).count("1") for h in hashes]
    assert hamming(hashes, query).tolist() == expected
