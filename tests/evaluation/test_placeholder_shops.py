"""evaluation.placeholder_shops on a small synthetic dataset: rates per shop and category, and leave-one-shop-out
really trains without the left-out shop (never ../shared/data)."""

from __future__ import annotations

import numpy as np

from evaluation import placeholder_shops as ev
from tests.training.support import random_quality_inputs
from training.quality_dataset import Dataset
from training.quality_samples import Spec

STEPS = 150  # a quarter of the served recipe: enough on this separable toy set


def synthetic_dataset(tmp_path) -> tuple[Dataset, dict[str, str]]:
    """Placeholders lean one way on the first embedding axis, photos the other, except shop `odd`'s photos, which sit
    on the placeholders' side: only a head that has seen them as negatives learns to keep them."""
    products = tmp_path / "products"
    specs, direction = [], []
    rng = np.random.default_rng(0)
    for i in range(120):
        role = ("train", "train", "calibration", "test")[i % 4]
        specs.append(Spec(f"ph_text:{i}", "ph_text", "", f"phrase:{i}", role))
        direction.append(1.0)
    for shop in ("spree", "odd"):
        for i in range(60):
            role = ("train", "train", "calibration", "test")[i % 4]
            source = str(products / f"{shop}_{i}.jpg")
            specs.append(Spec(f"shop:{shop}_{i}", "shop", source, f"product:{shop}{i}", role))
            direction.append(-1.0 if shop == "spree" else 0.6 + 0.3 * rng.random())
    embeddings, features = random_quality_inputs(len(specs), seed=1)
    embeddings[:, 0] = np.array(direction) * 3.0
    embeddings[:, 1] = np.array([1.0 if s.kind == "shop" and "odd" in s.source else 0.0 for s in specs]) * 3.0
    labels = np.full((len(specs), 3), np.nan, np.float32)
    labels[:, :2] = rng.integers(0, 2, (len(specs), 2))  # blur, small_object: noise, every head needs labels
    labels[:, 2] = [1.0 if s.kind == "ph_text" else 0.0 for s in specs]
    nan = np.full(len(specs), np.nan, np.float32)
    sizes = np.full((len(specs), 2), 500, np.int32)
    categories = {f"{shop}_{i}.jpg": "furniture" if i % 2 else "home" for shop in ("spree", "odd") for i in range(60)}
    return Dataset(specs, embeddings, features, labels, nan, nan, sizes), categories


def test_shop_and_family_of_a_sample(tmp_path):
    assert ev.shop_of_spec(Spec("shop:ps14_a.jpg", "shop", str(tmp_path / "products" / "ps14_a.jpg"), "g", "test")) == (
        "prestashop"
    )
    assert ev.shop_of_spec(Spec("thin:x.jpg", "thin", str(tmp_path / "catalog" / "x.jpg"), "g", "train")) is None
    assert ev.family_of_spec(Spec("ph_shop:a:0", "ph_shop", "a", "real-placeholder:spree", "train")) == "spree"
    assert ev.family_of_spec(Spec("ph_text:1", "ph_text", "", "phrase:x", "train")) is None


def test_photo_rates_count_per_shop_and_category(tmp_path):
    ds, categories = synthetic_dataset(tmp_path)
    rows = ds.rows(kinds=("shop",))
    scores = np.zeros(len(ds.specs))
    scores[rows[-3:]] = 0.9  # three of shop odd's photos flagged
    rates = ev.photo_rates(ds, scores, rows, categories)
    assert rates["all"] == {"n": 120, "flagged": 3, "rate": 0.025}
    assert rates["by_shop"]["odd"]["flagged"] == 3 and rates["by_shop"]["spree"]["flagged"] == 0
    assert sum(v["n"] for v in rates["by_category"].values()) == 120
    assert rates["highest_scores"][0][1] == 0.9


def test_leave_one_shop_out_scores_a_shop_with_a_head_that_never_saw_it(tmp_path):
    ds, categories = synthetic_dataset(tmp_path)
    report = ev.leave_one_out(ds, categories, {"spree", "odd"}, min_precision=0.99, steps=STEPS)
    # Trained with shop odd's photos as negatives, a head keeps them (second axis); left out, they look like
    # placeholders to it: the left-out rate is what a new shop would meet.
    assert report["shops"]["odd"]["all"]["n"] == 60
    assert report["shops"]["odd"]["all"]["rate"] > 0.5
    assert report["shops"]["spree"]["all"]["rate"] == 0.0
    assert report["all_left_out_photos"]["n"] == 120
    served_like = ev.retrained_scores(ds, np.array([], dtype=int), min_precision=0.99, steps=STEPS)
    odd_rows = [i for i, s in enumerate(ds.specs) if ev.shop_of_spec(s) == "odd"]
    assert (served_like[odd_rows] >= ev.FLAGGED).mean() < 0.2
