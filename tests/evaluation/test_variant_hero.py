"""evaluation.variant_hero: colourway families of other shops' keys, the planted trials, and one trial through the
real selection (small made-up images: no development data needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from contract.categories_file import load_catalog
from evaluation import variant_hero
from evaluation.variant_data import VariantImages, family_of
from gateway.hashing import HSV_HIST_BINS
from tests.helpers import product_photo


def test_colourway_families_of_product_keys():
    assert family_of("thelia_PROD005-owen-c1") == family_of("thelia_PROD005-owen-c2") == "thelia_PROD005-owen"
    assert family_of("smartstore_converse-all-star-navy") == "smartstore_converse-all-star"
    assert family_of("smartstore_converse-all-star-group") is None  # the group shot is no colourway
    assert family_of("abante_57-delicate-oil-free-powder-blush-r100037") == "abante_57-delicate-oil-free-powder-blush"
    assert family_of("nop_apple-macbook-pro") is None


def images(tmp_path: Path) -> VariantImages:
    """Style s1 in red (front, back) and blue (front); each picture its own file, the blue one another colour."""
    rows = [("red", "front", 0.0), ("red", "back", 0.05), ("blue", "front", 1.0)]
    paths, hists, thumbs = [], [], []
    for k, (colour, _, blue) in enumerate(rows):
        path = tmp_path / f"{k}.png"
        photo = product_photo(side=96, colour=(200, 40, 40) if colour == "red" else (40, 90, 200), seed=k)
        photo.save(path)
        paths.append(path)
        thumbs.append(np.asarray(photo.resize((128, 128))))
        hist = np.zeros(HSV_HIST_BINS, np.float32)
        hist[10], hist[20] = blue, 1 - blue
        hists.append(hist)
    n = len(rows)
    return VariantImages(
        paths=paths,
        source=["catalog"] * n,
        products=[f"s1-{colour}" for colour, _, _ in rows],
        families=["s1"] * n,
        types=[image_type for _, image_type, _ in rows],
        embeddings=np.zeros((n, 4), np.float32),
        hsv_hist=np.stack(hists),
        phash=np.arange(n, dtype=np.uint64) * np.uint64(0x0F0F0F0F0F0F0F0F),
        dhash_edge=np.arange(n, dtype=np.uint64) * np.uint64(0x3333333333333333),
        sizes=np.full((n, 2), 1000),
        type_probs=np.zeros((n, 5), np.float32),
        thumbs=np.stack(thumbs),
    )


def test_planted_trial_through_the_selection(tmp_path):
    v = images(tmp_path)
    trials = list(variant_hero.trials(v, 1))
    assert [(t.own, t.planted) for t in trials] == [((2,), (0,)), ((0, 1), (2,))]  # each colourway planted in the other
    red = trials[1]
    apparel = dataclasses.replace(load_catalog().get("apparel"), min_side=0)
    assert variant_hero.run_trial(v, red, apparel, "manifest", priorities=False) == (True, 0)
    off = dataclasses.replace(apparel, variant=None)
    assert variant_hero.run_trial(v, red, off, "manifest", priorities=False)[0] is False  # first in input order wins


def test_trials_of_products_whose_own_photos_disagree_are_reported_apart(tmp_path, monkeypatch):
    v = images(tmp_path)
    apparel = dataclasses.replace(load_catalog().get("apparel"), min_side=0)
    monkeypatch.setattr(variant_hero, "OWN_PHOTOS_DISAGREE", frozenset({"s1-red"}))
    row = variant_hero.summarise(v, apparel, ["catalog"], "manifest")["catalog"]
    assert row["after"] == {"hero_own": 1.0, "trials": 1}  # every trial stays in the headline figure
    assert row["after_own_photos_disagree"] == {"hero_own": 1.0, "trials": 1}
    assert row["after_own_photos_agree"] == {"hero_own": None, "trials": 0}
    monkeypatch.setattr(variant_hero, "OWN_PHOTOS_DISAGREE", frozenset())
    row = variant_hero.summarise(v, apparel, ["catalog"], "manifest")["catalog"]
    assert row["after_own_photos_agree"] == {"hero_own": 1.0, "trials": 1}
    assert row["false_inconsistent"]["own_photos_agree"]["images"] == row["false_inconsistent"]["images"]
