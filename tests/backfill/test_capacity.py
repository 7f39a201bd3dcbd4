"""The backfill's pure arithmetic: how a product's image set changed, a sample's figures, workers and replicas for a
catalog by a deadline (with the arithmetic spelled out)."""

from __future__ import annotations

import math

import pytest

from backfill.capacity import Change, WorkerTime, capacity, image_set_change, sample_figures
from backfill.worker import backoff_delay


def test_image_set_change_counts_drops_duplicates_and_hero():
    statuses = {"a": "selected", "b": "duplicate", "c": "rejected", "d": "error", "e": "selected"}
    change = image_set_change(["a", "b", "c", "d", "e"], statuses, ["a", "e"])
    assert change == Change(dropped=2, duplicates=1, hero_changed=False) and change.changed
    unchanged = image_set_change(["a", "e"], {"a": "selected", "e": "selected"}, ["a", "e"])
    assert not unchanged.changed
    assert image_set_change(["a", "e"], {"a": "selected", "e": "selected"}, ["e", "a"]).hero_changed
    assert image_set_change(["a"], {"a": "rejected"}, []).hero_changed  # nothing selected: no hero at all


def figures(replicas: int = 1):
    changes = [Change(0, 0, False), Change(1, 0, False), Change(0, 2, True), Change(0, 0, False)]
    workers = [WorkerTime("w1", 2, 10, 4.0), WorkerTime("w2", 2, 6, 2.0)]
    return sample_figures([8, 2, 4, 2], changes, workers, wall_s=4.0, triton_replicas=replicas)


def test_sample_figures():
    f = figures()
    assert (f.products, f.images_per_product_mean, f.images_per_product_median, f.images_per_product_p90) == (
        4,
        4.0,
        3.0,
        8,
    )
    assert (f.changed_share, f.dropped_share, f.duplicates_share, f.hero_changed_share) == (0.5, 0.25, 0.25, 0.25)
    assert f.products_per_s == 1.0 and f.images_per_s == 4.0
    assert f.products_per_s_per_worker == pytest.approx((2 / 4 + 2 / 2) / 2)
    assert f.images_per_s_per_worker == pytest.approx((10 / 4 + 6 / 2) / 2)
    assert figures(replicas=2).products_per_s_per_replica == 0.5
    with pytest.raises(ValueError, match="no product"):
        sample_figures([], [], [], 1.0, 1)


def test_capacity_for_a_catalog_and_deadline():
    f = figures()  # 0.75 products/s per worker, 1.0 per replica
    need = capacity(2_000_000, 24, f)
    rate = 2_000_000 / (24 * 3600)
    assert need.needed_products_per_s == pytest.approx(rate)
    assert need.workers == math.ceil(rate / 0.75) == 31
    assert need.triton_replicas == math.ceil(rate / 1.0) == 24
    assert "= 31" in need.steps[1] and "= 24" in need.steps[2] and "8,000,000" in need.steps[3]
    with pytest.raises(ValueError):
        capacity(0, 24, f)


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(a, 1.0, 5.0, 1.0) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff_delay(2, 1.0, 5.0, 0.5) == 1.0
