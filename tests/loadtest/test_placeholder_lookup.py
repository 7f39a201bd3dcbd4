"""The placeholder lookup benchmark: in memory, and through PlaceholderLibrary on PostgreSQL (small libraries)."""

from __future__ import annotations

import asyncio

from loadtest.placeholder_lookup import make_data, measure, measure_postgres
from tests.database import fresh_database


def test_planted_near_duplicates_are_found_in_memory():
    library, q, planted = make_data(2000, 40, 15, seed=1)
    m = measure(library, q, 15, "linear", 4, 3, 10)
    assert planted == 20 and 12 <= int((m["rows"] >= 0).sum()) <= 20


def test_postgres_lookup_matches_the_in_process_index_and_times_a_reload():
    library, q, _ = make_data(1500, 40, 15, seed=2)
    results = asyncio.run(measure_postgres(fresh_database(), library, q, [15, 16], 500, 10, 2))
    assert [m["max_distance"] for m in results] == [15, 16] and [m["radius"] for m in results] == [3, 4]
    for m in results:
        assert m["same"] and m["found"] >= 12
        assert m["p50_ms"] > 0 and m["version_p50_ms"] > 0 and m["local_p50_ms"] > 0
        assert m["reload_match_s"] > 0 and m["reload_load_s"] > 0
