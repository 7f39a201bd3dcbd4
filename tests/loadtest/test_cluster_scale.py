"""loadtest.cluster_scale: the synthetic hash vectors look like real pHashes, and the script runs end to end."""

from __future__ import annotations

import json

import numpy as np

from contract.categories_file import load_catalog
from gateway.catalog_dedup import popcount64, radius_for
from loadtest import cluster_scale
from loadtest.cluster_scale import synthetic_catalog


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
    distance = popcount64(v.phash[i] ^ v.phash[j])
    assert 24 < distance[i != j].mean() < 31
    assert (distance[i != j] <= 10).mean() < 0.01


def test_script_runs_on_a_small_slice(tmp_path, capsys):
    out = tmp_path / "result.json"
    exact = radius_for(load_catalog().default.dedup.phash_max_distance, bands=4)
    cluster_scale.main(
        [
            "--images",
            "3000",
            "--recall-images",
            "1500",
            "--product-images",
            "30",
            "--radius",
            "0",
            str(exact),
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert "Catalog slice, 3000 images" in printed and "Recall vs brute force" in printed
    result = json.loads(out.read_text())
    assert result["recall"][f"radius_{exact}"]["recall"] == 1.0  # the exact radius covers the pHash threshold
    assert result["recall"]["radius_0"]["found_only_true_pairs"]
    scale = result["scale"]
    assert scale[f"radius_{exact}"]["duplicate_pairs"] >= scale["radius_0"]["duplicate_pairs"] > 0
    assert scale[f"radius_{exact}"]["recall_vs_exact"] == 1.0 and 0 < scale["radius_0"]["recall_vs_exact"] <= 1
    assert 0 < scale["radius_0"]["planted_pairs"] <= scale["radius_0"]["duplicate_pairs"]
    assert result["product"]["mixed"]["select_ms"]["median"] > 0
