"""gateway.catalog_dedup: candidate generation equals brute force within its guarantee, brute force equals the rule
pair by pair, clustering equals gateway.decisions' leader rule."""

from __future__ import annotations

import numpy as np
import pytest

from contract.categories import DedupThresholds
from gateway.catalog_dedup import PairStats, brute_force_pairs, candidate_pairs, cluster, duplicate_pairs
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.duplicates import cluster_duplicates
from gateway.decisions.ranking import representative_key
from gateway.hashing import HashVectors, ImageHashes, chi2_distance, guaranteed_distance, radius_for, rule_closeness

DEFAULT = DedupThresholds(phash_max_distance=10, dhash_edge_max_distance=12, hsv_chi2_max=0.15)


def flips(rng: np.random.Generator, count: int, distances) -> np.ndarray:
    """`count` uint64 masks, mask k with distances[k] random bits set."""
    masks = np.zeros(count, dtype=np.uint64)
    for row, distance in enumerate(np.broadcast_to(distances, (count,))):
        for bit in rng.choice(64, int(distance), replace=False):
            masks[row] |= np.uint64(1) << np.uint64(bit)
    return masks


def grouped(n: int, groups: int, max_flip: int, seed: int = 0, hist_noise: float = 0.1) -> HashVectors:
    """n images drawn from `groups` originals: each differs from its original by 0..max_flip bits per hash and a
    little histogram noise, so pairs inside a group straddle the thresholds."""
    rng = np.random.default_rng(seed)
    source = rng.integers(0, groups, n)
    base_p = rng.integers(0, 2**64, groups, dtype=np.uint64)
    base_d = rng.integers(0, 2**64, groups, dtype=np.uint64)
    phash = base_p[source] ^ flips(rng, n, rng.integers(0, max_flip + 1, n))
    dhash = base_d[source] ^ flips(rng, n, rng.integers(0, max_flip + 1, n))
    hist = rng.dirichlet(np.full(128, 0.2), groups)[source] + hist_noise * rng.dirichlet(np.full(128, 1.0), n)
    return HashVectors.of(phash, dhash, (hist / hist.sum(axis=1, keepdims=True)).astype(np.float32))


def pair_set(i, j) -> set[tuple[int, int]]:
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist()))


def naive_pairs(v: HashVectors, t: DedupThresholds) -> set[tuple[int, int]]:
    """The rule spelled out with Python ints over every pair."""
    return {
        (a, b)
        for a in range(len(v))
        for b in range(a + 1, len(v))
        if (int(v.phash[a]) ^ int(v.phash[b])).bit_count() <= t.phash_max_distance
        and (int(v.dhash_edge[a]) ^ int(v.dhash_edge[b])).bit_count() <= t.dhash_edge_max_distance
        and chi2_distance(v.hsv_hist[a], v.hsv_hist[b]) <= t.hsv_chi2_max
    }


# --------------------------------------------------------------------------------------------- pair finding


def test_brute_force_equals_the_naive_pair_loop():
    v = grouped(150, 30, 12, seed=3)
    expected = naive_pairs(v, DEFAULT)
    assert len(expected) > 50
    i, j = brute_force_pairs(v, DEFAULT, block=37)
    assert pair_set(i, j) == expected
    assert (i < j).all()


@pytest.mark.parametrize("seed", [4, 5])
def test_banding_equals_brute_force_when_every_duplicate_is_within_the_guarantee(seed):
    # pHash threshold 3 = the guarantee of 4 bands of 16 bits with exact matching: nothing may be missed.
    t = DedupThresholds(phash_max_distance=3, dhash_edge_max_distance=12, hsv_chi2_max=0.15)
    assert guaranteed_distance(4, 0) == 3
    v = grouped(2000, 300, 5, seed=seed)
    brute = pair_set(*brute_force_pairs(v, t))
    assert len(brute) > 500
    stats = PairStats()
    assert pair_set(*duplicate_pairs(v, t, bands=4, radius=0, stats=stats)) == brute
    assert stats.pairs == len(brute) and stats.candidates >= len(brute)


def test_radius_for_the_threshold_makes_banding_exact():
    v = grouped(1500, 200, 12, seed=6)
    brute = pair_set(*brute_force_pairs(v, DEFAULT))
    assert radius_for(DEFAULT.phash_max_distance, 4) == 2 and guaranteed_distance(4, 2) >= 10
    assert pair_set(*duplicate_pairs(v, DEFAULT, radius=None)) == brute


def test_plain_banding_loses_only_pairs_beyond_its_guarantee():
    v = grouped(1500, 200, 12, seed=7)
    brute = pair_set(*brute_force_pairs(v, DEFAULT))
    found = pair_set(*duplicate_pairs(v, DEFAULT, radius=0))
    assert found <= brute
    missed = brute - found
    assert missed  # the data has pairs at 4..10 bits that share no band
    assert all(int(v.phash[a] ^ v.phash[b]).bit_count() > 3 for a, b in missed)


def test_chunked_expansion_gives_the_same_pairs(monkeypatch):
    v = grouped(800, 20, 8, seed=8)  # large buckets: many candidates per query
    expected = pair_set(*duplicate_pairs(v, DEFAULT, radius=1))
    monkeypatch.setattr("gateway.hashing.bands.CANDIDATE_CHUNK", 97)
    assert pair_set(*duplicate_pairs(v, DEFAULT, radius=1)) == expected


def test_candidates_within_a_band_come_once_and_never_pair_an_image_with_itself():
    rng = np.random.default_rng(9)
    phash = rng.integers(0, 2**64, 300, dtype=np.uint64) & np.uint64(0xFFFF_0000_0000_0003)  # crowded buckets
    for bands, radius in ((4, 0), (4, 1), (8, 1)):
        pairs = [(a, b) for i, j in candidate_pairs(phash, bands, radius) for a, b in zip(i.tolist(), j.tolist())]
        assert all(a != b for a, b in pairs)
        assert len(pairs) <= bands * len({(min(a, b), max(a, b)) for a, b in pairs})


def test_candidate_generation_rejects_bad_bands():
    with pytest.raises(ValueError, match="bands"):
        list(candidate_pairs(np.zeros(3, np.uint64), bands=5))
    with pytest.raises(ValueError, match="radius"):
        list(candidate_pairs(np.zeros(3, np.uint64), bands=4, radius=17))


def test_tiny_inputs():
    for n in (0, 1):
        v = grouped(n, 1, 0) if n else HashVectors.from_hashes([])
        i, j = duplicate_pairs(v, DEFAULT)
        assert len(i) == len(j) == 0
        assert cluster(n, i, j).tolist() == list(range(n))


# ------------------------------------------------------------------------------------------------- clustering


def sequential_leaders(n: int, pairs: set[tuple[int, int]], rank: np.ndarray) -> list[int]:
    """The rule of gateway.decisions.cluster_duplicates, literally."""
    adjacent = {(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}
    representative = list(range(n))
    leaders: list[int] = []
    for node in sorted(range(n), key=lambda k: rank[k]):
        joined = next((leader for leader in leaders if (node, leader) in adjacent), None)
        if joined is None:
            leaders.append(node)
        else:
            representative[node] = joined
    return representative


def union_find_representatives(n: int, pairs, rank) -> list[int]:
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    best: dict[int, int] = {}
    for node in range(n):
        r = root(node)
        if r not in best or rank[node] < rank[best[r]]:
            best[r] = node
    return [best[root(node)] for node in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_leader_and_component_clustering_equal_their_sequential_definitions(seed):
    rng = np.random.default_rng(seed)
    n = 300
    # Random sparse graph with chains and cliques; ranks with ties (broken by input order).
    edges = {tuple(sorted(rng.choice(n, 2, replace=False).tolist())) for _ in range(400)}
    i, j = (np.array(side) for side in zip(*sorted(edges)))
    rank = rng.integers(0, 50, n)
    tie_broken = np.argsort(np.argsort(rank, kind="stable"), kind="stable")
    assert cluster(n, i, j, rank).tolist() == sequential_leaders(n, edges, tie_broken)
    assert cluster(n, i, j, rank, method="components").tolist() == union_find_representatives(n, edges, tie_broken)


def test_chain_is_not_merged_by_leader_clustering():
    # 0~1, 1~2, 0!~2: 1 joins 0, 2 leads its own cluster; components merge all three.
    i, j = np.array([0, 1]), np.array([1, 2])
    assert cluster(3, i, j).tolist() == [0, 0, 2]
    assert cluster(3, i, j, method="components").tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="method"):
        cluster(3, i, j, method="nope")


def test_catalog_clustering_equals_the_gateway_on_one_product():
    v = grouped(150, 30, 12, seed=11)
    rng = np.random.default_rng(11)
    analyses = [
        ImageAnalysis(
            id=f"i{k}",
            supplier=None,
            index=k,
            ok=True,
            width=int(rng.choice([800, 1000, 1200])),
            height=1000,
            scores={"blur": float(rng.choice([0.1, 0.2]))},
            hashes=ImageHashes(int(v.phash[k]), int(v.dhash_edge[k]), v.hsv_hist[k]),
        )
        for k in range(len(v))
    ]
    expected = {a.index: cluster_[0].index for cluster_ in cluster_duplicates(analyses, DEFAULT) for a in cluster_}
    ranked = sorted(analyses, key=representative_key)
    rank = np.empty(len(v), dtype=np.int64)
    rank[[a.index for a in ranked]] = np.arange(len(v))
    i, j = duplicate_pairs(v, DEFAULT, radius=None)
    got = cluster(len(v), i, j, rank, closeness=rule_closeness(v, i, j, DEFAULT))
    assert got.tolist() == [expected[k] for k in range(len(v))]
    assert got.tolist() != cluster(len(v), i, j, rank).tolist()  # the closeness decided some members
    assert len(set(got.tolist())) < len(v)  # there were duplicates
