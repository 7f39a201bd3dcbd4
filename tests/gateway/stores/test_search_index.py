"""The visual-search index in PostgreSQL: partitions and their exact sizes, replacement by image id (also across
partitions), product removal, all or nothing, per-product results, the exact scan below `exact_max` and the HNSW
index above it (the plan each search runs, read with EXPLAIN in the store's own transaction), and exact counts under
concurrent writers of two gateways."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import psycopg
import pytest
from psycopg import sql

from gateway.clients.database import Database
from gateway.stores.search_index import SearchIndex, partition_table
from tests.database import fresh_database
from tests.gateway.stores.support import opened, unit_vectors

pytestmark = pytest.mark.anyio


def stored_counts(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """(rows per partition, search_partitions' sizes) read by hand, empty partitions left out."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT partition, count(*) FROM search_items GROUP BY partition").fetchall()
        sizes = connection.execute("SELECT name, images FROM search_partitions WHERE images > 0").fetchall()
    return dict(rows), dict(sizes)


class PlanRecorder(Database):
    """A Database whose connections EXPLAIN each nearest-neighbour query before running it, in the same transaction
    (so the store's transaction-local settings, enable_indexscan and hnsw.ef_search, apply to the plan)."""

    def __init__(self, url: str):
        super().__init__(url, 4, 10.0, False, 2.0)
        self.plans: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with super().transaction() as connection:
            yield _Explaining(connection, self.plans)


class _Explaining:
    def __init__(self, connection: psycopg.AsyncConnection, plans: list[str]):
        self._connection = connection
        self._plans = plans

    def __getattr__(self, name: str):
        return getattr(self._connection, name)

    async def execute(self, query, params=None):
        if isinstance(query, sql.Composable) and "<=>" in query.as_string(self._connection):
            cursor = await self._connection.execute(sql.SQL("EXPLAIN ") + query, params)
            plan = "\n".join(row[0] for row in await cursor.fetchall())
            self._plans.append(re.sub(r"'\[[^]]*\]'", "'[...]'", plan))  # the query vector's 1280 numbers left out
        return await self._connection.execute(query, params)


@pytest.fixture
async def recorder(anyio_backend) -> AsyncIterator[PlanRecorder]:
    database = PlanRecorder(fresh_database())
    try:
        yield database
    finally:
        await database.close()


async def test_search_finds_the_same_image_first_and_only_in_the_given_partitions(database):
    vectors = unit_vectors(6, 0)
    index = SearchIndex(database)
    partitions = ["fruit", "fruit", "fruit", "packages", "packages", "apparel"]
    assert await index.add([(f"p{i}", f"img{i}", partitions[i], vectors[i]) for i in range(6)]) == [
        f"img{i}" for i in range(6)
    ]
    assert await index.partitions() == {"apparel": 1, "fruit": 3, "packages": 2}
    hits = await index.search(vectors[4], ["packages"], k=5)
    assert [h.image_id for h in hits] == ["img4", "img3"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)  # halfvec storage
    assert (hits[0].product_id, hits[0].partition) == ("p4", "packages")
    assert {h.partition for h in await index.search(vectors[4], ["fruit"], k=5)} == {"fruit"}
    everywhere = await index.search(vectors[4], ["fruit", "packages", "apparel"], k=6)
    assert len(everywhere) == 6 and everywhere[0].image_id == "img4"
    assert [h.score for h in everywhere] == sorted((h.score for h in everywhere), reverse=True)
    assert await index.search(vectors[0], ["no-such"], k=3) == []
    assert await index.add([]) == []


async def test_per_product_keeps_a_products_best_image_and_still_fills_k_products(database):
    v = unit_vectors(8, 1)
    near = [v[0] + 0.05 * k * v[1] for k in range(1, 6)]
    index = SearchIndex(database)
    await index.add(
        [("p1", "a", "fruit", v[0])]
        + [("p1", f"near{k}", "fruit", x / np.linalg.norm(x)) for k, x in enumerate(near)]
        + [("p2", "c", "fruit", v[2]), ("p3", "d", "fruit", v[3])]
    )
    per_product = await index.search(v[0], ["fruit"], k=3)
    assert [h.product_id for h in per_product][:1] == ["p1"] and per_product[0].image_id == "a"
    assert sorted(h.product_id for h in per_product) == ["p1", "p2", "p3"]  # p1's five near images collapse
    assert [h.image_id for h in await index.search(v[0], ["fruit"], k=2, per_product=False)] == ["a", "near0"]


async def test_another_gateway_sees_replacements_partition_moves_and_removals(database):
    v = unit_vectors(5, 2)
    index = SearchIndex(database)
    await index.add([("p1", "a", "fruit", v[0]), ("p1", "b", "fruit", v[1]), ("p2", "c", "gear", v[2])])
    await index.add([("p1", "b", "vegetables", v[3])])  # re-indexed: moves partition, replaces the vector
    await index.add([("p3", "e", "fruit", v[4]), ("p3", "e", "gear", v[4])])  # a batch repeating an id: last wins
    async with opened(database.url) as other:
        reopened = SearchIndex(other)
        assert await reopened.partitions() == {"fruit": 1, "gear": 2, "vegetables": 1}
        assert (await reopened.search(v[3], ["vegetables"], k=1))[0].image_id == "b"
        assert [h.image_id for h in await reopened.search(v[1], ["fruit"], k=5)] == ["a"]  # no stale copy of b
        assert await reopened.remove_product("p1") == 2
        assert await reopened.remove_product("p1") == 0
        assert await reopened.partitions() == {"gear": 2}
    assert await index.search(v[0], ["fruit", "vegetables"], k=5) == []
    assert stored_counts(database.url) == ({"gear": 2}, {"gear": 2})


async def test_a_failed_batch_stores_nothing(database):
    index = SearchIndex(database)
    v = unit_vectors(2, 3)
    await index.add([("p0", "kept", "fruit", v[0])])
    with pytest.raises(psycopg.errors.DataException):  # a vector of the wrong width, after good rows
        await index.add(
            [("p1", "kept", "gear", v[1]), ("p1", "a", "toys", v[1]), ("p2", "b", "toys", unit_vectors(1, 4, 64)[0])]
        )
    assert await index.partitions() == {"fruit": 1}
    assert [h.image_id for h in await index.search(v[0], ["fruit", "gear", "toys"], k=5)] == ["kept"]
    assert stored_counts(database.url) == ({"fruit": 1}, {"fruit": 1})


async def test_any_partition_name_gets_its_own_table(database):
    names = ["Home & Garden", "home-garden", "kids' toys", "Küche", "x" * 200, ""]
    tables = [partition_table(name) for name in names]
    assert len(set(tables)) == len(names) and all(len(t) <= 63 for t in tables)
    index = SearchIndex(database)
    v = unit_vectors(len(names), 5)
    await index.add([(f"p{i}", f"i{i}", name, v[i]) for i, name in enumerate(names)])
    assert await index.partitions() == {name: 1 for name in names}
    for i, name in enumerate(names):
        assert [(h.image_id, h.partition) for h in await index.search(v[i], [name], k=3)] == [(f"i{i}", name)]


async def test_below_exact_max_a_partition_is_scanned_exactly(recorder):
    v = unit_vectors(50, 6)
    index = SearchIndex(recorder, exact_max=50)
    await index.add([(f"p{i}", f"i{i}", "fruit", v[i]) for i in range(50)])
    assert (await index.search(v[7], ["fruit"], k=3))[0].image_id == "i7"
    [plan] = recorder.plans
    assert "Seq Scan" in plan and "Index Scan" not in plan, plan


async def test_above_exact_max_results_agree_with_exact_search(recorder):
    """Same rows, two settings: the exact scan's top 10 and the above-`exact_max` path's mostly coincide."""
    stored = unit_vectors(300, 7)
    exact = SearchIndex(recorder, exact_max=10_000)
    approximate = SearchIndex(recorder, exact_max=10, ef_search=100)
    await exact.add([(f"p{i}", f"i{i}", "fruit", stored[i]) for i in range(len(stored))])
    noise = unit_vectors(20, 8)
    queries = np.concatenate([stored[:20] + 0.5 * noise, unit_vectors(20, 9)])
    overlap = []
    for q in queries:
        truth = {h.image_id for h in await exact.search(q, ["fruit"], k=10, per_product=False)}
        found = {h.image_id for h in await approximate.search(q, ["fruit"], k=10, per_product=False)}
        overlap.append(len(truth & found) / 10)
    assert np.mean(overlap) >= 0.9
    assert (await approximate.search(stored[7], ["fruit"], k=1))[0].image_id == "i7"
    appended = unit_vectors(20, 13)  # appended to a large partition: found at once (the index is kept by PostgreSQL)
    await approximate.add([(f"q{i}", f"j{i}", "fruit", appended[i]) for i in range(len(appended))])
    assert await approximate.partitions() == {"fruit": 320}
    assert (await approximate.search(appended[11], ["fruit"], k=1))[0].image_id == "j11"


async def test_above_exact_max_the_partitions_hnsw_index_is_searched(recorder):
    stored = unit_vectors(300, 10)
    index = SearchIndex(recorder, exact_max=10)
    await index.add([(f"p{i}", f"i{i}", "fruit", stored[i]) for i in range(len(stored))])
    await index.search(stored[0], ["fruit"], k=10, per_product=False)
    [plan] = recorder.plans
    assert f"Index Scan using {partition_table('fruit')}_embedding_idx" in plan, plan


async def test_concurrent_writers_of_two_gateways_keep_partition_sizes_exact(database):
    async with opened(database.url) as other:
        for gateway in (database, other):
            await gateway.check()  # schema checked: a call during a gateway's first check is refused (503)
        indexes = [SearchIndex(database), SearchIndex(other)]
        names = ["fruit", "gear", "toys", "kids' toys"]
        v = unit_vectors(60, 11)
        # 30 batches over four partitions (created concurrently), ids re-added into other partitions by later
        # batches, and products removed while others write.
        batches = [
            [(f"p{i % 12}", f"i{i}", names[(b + i) % 4], v[i]) for i in range(b * 2, b * 2 + 6) if i < 60]
            for b in range(30)
        ]
        writes = [indexes[b % 2].add(batch) for b, batch in enumerate(batches)]
        removals = [indexes[n % 2].remove_product(f"p{n}") for n in (3, 7)]
        await asyncio.gather(*writes, *removals)
        rows, sizes = stored_counts(database.url)
        assert rows == sizes == await indexes[1].partitions()
        with psycopg.connect(database.url) as connection:
            ids = connection.execute("SELECT image_id FROM search_items").fetchall()
        assert len(ids) == len({i for (i,) in ids})  # each image id indexed once, in one partition
