"""loadtest.loop_lag runs the duplicate clustering both ways on thumbnails made here and reports both rows (a smoke
test of the benchmark script: its timings are not asserted, BENCHMARKS.md holds them)."""

from __future__ import annotations

import asyncio

import numpy as np

from loadtest.loop_lag import analyses, measure
from tests.helpers import product_photo


def test_both_ways_are_measured_on_the_requested_counts():
    thumbs = [np.asarray(product_photo(128, (30 * k, 80, 160), seed=k)) for k in range(3)]
    assert [a.id for a in analyses(thumbs, 5)] == [f"img-{k}" for k in range(5)]  # photos repeated past 3
    rows = asyncio.run(measure(thumbs, [4, 20], repeats=1))
    assert [(r["images"], r["how"]) for r in rows] == [
        (4, "inline on the loop"),
        (4, "as served (decide)"),
        (20, "inline on the loop"),
        (20, "as served (decide)"),
    ]
    assert all(r["took_ms"] > 0 and r["worst_lag_ms"] >= 0 for r in rows)
