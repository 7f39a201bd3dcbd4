"""loadtest.cluster_scale: the script runs end to end on a small slice."""

from __future__ import annotations

import json

from contract.categories_file import load_catalog
from gateway.hashing import radius_for
from loadtest import cluster_scale


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
