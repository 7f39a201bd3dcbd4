"""The PostgreSQL search benchmark on a tiny catalog: run specs, and the exact/HNSW crossover with its plans."""

from __future__ import annotations

import asyncio

import pytest

from evaluation.search_scale import GaussianCatalog
from loadtest.pg_search_scale import crossover, parse_run
from tests.database import fresh_database


def test_a_run_spec_fills_in_the_defaults_and_refuses_unknown_builds():
    assert parse_run("1000", 200, None) == {
        "size": 1000,
        "build": "incremental",
        "storage": "plain",  # migration 0001's
        "queries": 200,
        "flat_queries": None,
    }
    assert parse_run("1000000:after_load:external:100:20", 200, None) == {
        "size": 1_000_000,
        "build": "after_load",
        "storage": "external",
        "queries": 100,
        "flat_queries": 20,
    }
    with pytest.raises(SystemExit):
        parse_run("1000:bulk", 200, None)


def test_crossover_times_exact_and_hnsw_per_partition_size():
    out = asyncio.run(crossover(fresh_database(), GaussianCatalog, [300, 600], 5, "plain", "64MB"))
    assert out["storage"] == "plain" and set(out["sizes"]) == {300, 600}
    for size in out["sizes"].values():
        assert size["exact_ms_p50"] > 0 and size["hnsw_forced_ms_p99"] > 0
        assert "Seq Scan" in size["exact_plan"]
        assert 0.0 <= size["hnsw_forced_recall_at_10_products"] <= 1.0
