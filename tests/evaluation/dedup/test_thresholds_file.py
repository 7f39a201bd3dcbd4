"""evaluation.dedup.thresholds_file: tune --write edits only its table of the categories file."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from contract.categories_file import DEFAULT_CATEGORIES_FILE, load_catalog
from evaluation.dedup.thresholds_file import TUNED_MARK, render_dedup_table, write_dedup_thresholds


def test_write_round_trips_through_the_categories_loader(tmp_path):
    original_bytes = DEFAULT_CATEGORIES_FILE.read_bytes()
    path = tmp_path / "categories.toml"
    shutil.copy(DEFAULT_CATEGORIES_FILE, path)
    comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]

    tone = load_catalog(path).default.dedup  # the tone rescue's keys: set by hand, kept by every write
    tuned = replace(tone, phash_max_distance=17, dhash_edge_max_distance=9, hsv_chi2_max=0.035)
    assert write_dedup_thresholds(path, None, tuned, ["data: test pairs, seed 0", "precision 0.99"]) == []
    catalog = load_catalog(path)
    assert catalog.default.dedup == tuned and catalog.get("television").dedup == tuned
    text = path.read_text()
    kept = [line for line in comments if not line.lstrip().startswith(TUNED_MARK)]
    assert all(line in text.splitlines() for line in kept)  # every hand-written comment survives
    assert f"{TUNED_MARK} data: test pairs, seed 0" in text

    # a second write replaces the values and the provenance lines instead of adding more
    again = replace(tone, phash_max_distance=5, dhash_edge_max_distance=6, hsv_chi2_max=0.5)
    write_dedup_thresholds(path, None, again, ["second run"])
    text = path.read_text()
    assert load_catalog(path).default.dedup == again
    assert "data: test pairs" not in text and text.count(f"{TUNED_MARK} second run") == 1
    assert text.count("phash_max_distance") == 1

    # a category gets its own table, after its block; the defaults stay
    grocery = replace(tone, phash_max_distance=8, dhash_edge_max_distance=10, hsv_chi2_max=0.02)
    write_dedup_thresholds(path, "grocery", grocery, ["grocery pairs"])
    catalog = load_catalog(path)
    assert catalog.get("grocery").dedup == grocery and catalog.default.dedup == again
    assert catalog.get("grocery").min_side == load_catalog(DEFAULT_CATEGORIES_FILE).get("grocery").min_side
    assert write_dedup_thresholds(path, None, again, ["third"]) == ["grocery"]  # reports the override it keeps

    with pytest.raises(ValueError, match="no \\[categories.nope\\]"):
        render_dedup_table(path.read_text(), "nope", grocery, [])
    assert DEFAULT_CATEGORIES_FILE.read_bytes() == original_bytes  # the repository's file is never touched
