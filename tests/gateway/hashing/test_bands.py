"""gateway.hashing.bands: the multi-index hashing guarantees and pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.hashing import guaranteed_distance, miss_probability, radius_for
from gateway.hashing.bands import band_keys, bucket_table, expand, probe_masks


def flips(rng: np.random.Generator, count: int, distance: int) -> np.ndarray:
    """`count` uint64 masks with `distance` random bits set each."""
    masks = np.zeros(count, dtype=np.uint64)
    for row in range(count):
        for bit in rng.choice(64, distance, replace=False):
            masks[row] |= np.uint64(1) << np.uint64(bit)
    return masks


def test_guarantee_and_radius():
    assert guaranteed_distance(4, 0) == 3 and guaranteed_distance(4, 3) == 15 and guaranteed_distance(8, 1) == 15
    assert radius_for(10, 4) == 2 and guaranteed_distance(4, radius_for(10, 4)) >= 10
    assert radius_for(3, 4) == 0 and radius_for(0, 4) == 0


def test_miss_probability_by_counting():
    assert [miss_probability(d) for d in range(4)] == [0.0] * 4
    # Distance 4 is missed when each of the 4 bands holds exactly one differing bit.
    assert miss_probability(4) == pytest.approx(16**4 / math.comb(64, 4))
    assert miss_probability(guaranteed_distance(4, 2), radius=2) == 0.0 < miss_probability(12, radius=2)
    assert miss_probability(64) == 1.0


def test_miss_probability_matches_sampling():
    rng = np.random.default_rng(10)
    masks = flips(rng, 4000, 8)
    missed = np.all([((masks >> np.uint64(s)) & np.uint64(0xFFFF)) != 0 for s in (0, 16, 32, 48)], axis=0)
    assert missed.mean() == pytest.approx(miss_probability(8), abs=0.03)


def test_probe_masks_are_every_value_within_the_radius():
    masks = probe_masks(8, 2)
    assert masks[0] == 0 and len(masks) == 1 + 8 + 28
    assert sorted(masks.tolist()) == [m for m in range(256) if m.bit_count() <= 2]
    assert not masks.flags.writeable and probe_masks(8, 2) is masks  # computed once


def test_band_keys_and_buckets():
    h = np.array([0xABCD_0000_0000_0001, 0x0000_0000_0000_0001, 0xABCD_FFFF_0000_0000], dtype=np.uint64)
    assert band_keys(h, 0, 16).tolist() == [0xABCD, 0, 0xABCD]
    assert band_keys(h, 3, 16).tolist() == [1, 1, 0]
    order, starts, counts = bucket_table(band_keys(h, 0, 16), 16)
    assert order.tolist() == [1, 0, 2]  # stable: equal keys keep their input order
    assert counts[0xABCD] == 2 and starts[0xABCD] == 1 and counts[0] == 1 and starts[0] == 0


def test_expand_in_chunks(monkeypatch):
    monkeypatch.setattr("gateway.hashing.bands.CANDIDATE_CHUNK", 3)
    lo, counts = np.array([10, 20, 30]), np.array([2, 0, 4])
    chunks = list(expand(lo, counts))
    pairs = [(q, t) for queries, targets in chunks for q, t in zip(queries.tolist(), targets.tolist())]
    assert pairs == [(0, 10), (0, 11), (2, 30), (2, 31), (2, 32), (2, 33)]
    assert len(chunks) == 2
