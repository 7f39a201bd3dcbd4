"""The persistent exemplar store behind the placeholder vote: bounded ring per category, survives reopen."""

import numpy as np
import pytest

from gateway.stores.exemplars import ExemplarStore


def unit(seed: int, dim: int = 1280) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_recent_distinct_products_most_recent_first_and_excluding_the_product(tmp_path):
    store = ExemplarStore(tmp_path / "ex.sqlite", capacity=100, per_product=2)
    for p in range(5):
        store.add("apparel", f"p{p}", [(f"p{p}-hero", unit(10 * p)), (f"p{p}-back", unit(10 * p + 1))])
    recent = store.recent("apparel", 3)
    assert recent.shape == (3, 1280)
    # One exemplar per product, its best (first given) image, newest product first; float16 storage.
    np.testing.assert_allclose(recent, np.stack([unit(40), unit(30), unit(20)]), atol=2e-3)
    skipping = store.recent("apparel", 10, exclude_product="p4")
    assert len(skipping) == 4
    np.testing.assert_allclose(skipping[0], unit(30), atol=2e-3)
    assert store.recent("footwear", 3).shape[0] == 0


def test_ring_is_bounded_per_category_and_per_product(tmp_path):
    store = ExemplarStore(tmp_path / "ex.sqlite", capacity=4, per_product=2)
    assert store.add("apparel", "p0", [(f"i{i}", unit(i)) for i in range(5)]) == 2
    for p in range(1, 4):
        store.add("apparel", f"p{p}", [("a", unit(100 + p)), ("b", unit(200 + p))])
    store.add("grocery", "g", [("a", unit(7))])
    assert store.categories() == {"apparel": 4, "grocery": 1}
    assert len(store.recent("apparel", 10)) == 2  # only p3 and p2 are left


def test_recurating_a_product_replaces_its_exemplars(tmp_path):
    store = ExemplarStore(tmp_path / "ex.sqlite", capacity=10)
    store.add("apparel", "p", [("old", unit(1))])
    store.add("apparel", "q", [("q", unit(2))])
    store.add("apparel", "p", [("new", unit(3))])
    assert store.count("apparel") == 2
    np.testing.assert_allclose(store.recent("apparel", 2)[0], unit(3), atol=2e-3)


def test_survives_reopen_and_applies_a_smaller_capacity(tmp_path):
    path = tmp_path / "data" / "exemplars.sqlite"
    store = ExemplarStore(path, capacity=10)
    for p in range(6):
        store.add("apparel", f"p{p}", [("hero", unit(p))])
    store.close()
    reopened = ExemplarStore(path, capacity=10)
    assert reopened.count("apparel") == 6
    np.testing.assert_allclose(reopened.recent("apparel", 1)[0], unit(5), atol=2e-3)
    reopened.close()
    smaller = ExemplarStore(path, capacity=3)
    assert smaller.count("apparel") == 3
    np.testing.assert_allclose(smaller.recent("apparel", 3)[-1], unit(3), atol=2e-3)


def test_invalid_bounds(tmp_path):
    with pytest.raises(ValueError):
        ExemplarStore(tmp_path / "ex.sqlite", capacity=0)
