"""The gateway CPU benchmark: compute_hashes beside its straightforward form, and the exemplar read in binary beside
the same query in text form (a small run on the test database)."""

from __future__ import annotations

import asyncio

import numpy as np

from loadtest.gateway_cpu import cpu_ms_per_item, measure_recent, same_hashes
from tests.database import fresh_database
from tests.helpers import product_photo


def test_hashes_are_timed_and_equal_the_straightforward_form():
    thumbs = [np.asarray(product_photo(200, (40 * k, 90, 200), seed=k).resize((128, 128))) for k in range(4)]
    timings = cpu_ms_per_item({"a": len, "b": np.sum}, thumbs, repeats=2)
    assert set(timings) == {"a", "b"} and all(ms >= 0 for ms in timings.values())
    assert same_hashes(thumbs)


def test_binary_and_text_reads_of_the_exemplars_are_the_same_array():
    result = asyncio.run(measure_recent(fresh_database(), exemplars=11, calls=3))
    assert result["same"]
    assert all(ms > 0 for ms in (*result["binary"], *result["text"]))
