"""loadtest.synthetic_hashes: the synthetic hash vectors look like real pHashes."""

from __future__ import annotations

import numpy as np

from gateway.hashing import hamming, popcount64
from loadtest.synthetic_hashes import synthetic_catalog


def test_synthetic_hashes_are_shaped_like_real_ones():
    synthetic = synthetic_catalog(3000, seed=1)
    v = synthetic.vectors
    assert len(v) == 3000 and synthetic.planted_groups > 100
    # pHash: DC bit always set, exactly 32 of 64 bits set (median threshold), so distances are even.
    assert (popcount64(v.phash) == 32).all() and (v.phash >> np.uint64(63) == 1).all()
    np.testing.assert_allclose(v.hsv_hist.sum(axis=1), 1.0, atol=1e-5)
    assert (v.hsv_hist >= 0).all()
    assert sorted(synthetic.rank.tolist()) == list(range(3000))
    # Random pairs are far apart on average, yet some share a 16-bit band: correlated, like studio photos.
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 3000, 20000), rng.integers(0, 3000, 20000)
    distance = hamming(v.phash[i], v.phash[j])
    assert 24 < distance[i != j].mean() < 31
    assert (distance[i != j] <= 10).mean() < 0.01
