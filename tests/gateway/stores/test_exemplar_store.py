"""The exemplar store behind the placeholder vote, in PostgreSQL: a bounded ring per category, a product's best
image per vote, re-curation replaces, all or nothing, and exact rings under concurrent writers of two gateways."""

from __future__ import annotations

import asyncio

import numpy as np
import psycopg
import pytest

from gateway.stores.exemplars import ExemplarStore
from tests.gateway.stores.support import opened, unit_vectors

pytestmark = pytest.mark.anyio

HALF = 2e-3  # halfvec storage: float16 round trip


def unit(seed: int) -> np.ndarray:
    return unit_vectors(1, seed)[0]


def rows_per_product(url: str, category: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        cursor = connection.execute(
            "SELECT product_id, count(*) FROM exemplars WHERE category = %s GROUP BY product_id", (category,)
        )
        return dict(cursor.fetchall())


async def test_recent_distinct_products_most_recent_first_and_excluding_the_product(database):
    store = ExemplarStore(database, capacity=100, per_product=2)
    for p in range(5):
        await store.add("apparel", f"p{p}", [(f"p{p}-hero", unit(10 * p)), (f"p{p}-back", unit(10 * p + 1))])
    recent = await store.recent("apparel", 3)
    assert recent.shape == (3, 1280) and recent.dtype == np.float32
    # One exemplar per product, its best (first given) image, newest product first.
    np.testing.assert_allclose(recent, np.stack([unit(40), unit(30), unit(20)]), atol=HALF)
    skipping = await store.recent("apparel", 10, exclude_product="p4")
    assert len(skipping) == 4
    np.testing.assert_allclose(skipping[0], unit(30), atol=HALF)
    assert (await store.recent("footwear", 3)).shape[0] == 0


async def test_recent_returns_the_stored_halfvec_values_exactly(database):
    """The binary read gives what the text form says, which is the embedding rounded to float16: no value is lost or
    altered on the way (tiny, subnormal, large and negative components included)."""
    store = ExemplarStore(database, capacity=10)
    vectors = unit_vectors(3, 7)
    vectors[0, :4] = [1e-7, -3e-6, 6.1e-5, 65000.0]  # below float16's subnormals, subnormal, normal edge, near max
    for p, vector in enumerate(vectors):
        await store.add("apparel", f"p{p}", [("hero", vector)])
    recent = await store.recent("apparel", 3)
    np.testing.assert_array_equal(recent, vectors[::-1].astype(np.float16).astype(np.float32))
    with psycopg.connect(database.url) as connection:
        texts = connection.execute("SELECT embedding::text FROM exemplars ORDER BY seq DESC").fetchall()
    as_text = np.array([[float(v) for v in text[1:-1].split(",")] for (text,) in texts], dtype=np.float32)
    np.testing.assert_array_equal(recent, as_text)


async def test_ring_is_bounded_per_category_and_per_product(database):
    store = ExemplarStore(database, capacity=4, per_product=2)
    assert await store.add("apparel", "p0", [(f"i{i}", unit(i)) for i in range(5)]) == 2
    for p in range(1, 4):
        await store.add("apparel", f"p{p}", [("a", unit(100 + p)), ("b", unit(200 + p))])
    await store.add("grocery", "g", [("a", unit(7))])
    assert await store.categories() == {"apparel": 4, "grocery": 1}
    assert len(await store.recent("apparel", 10)) == 2  # only p3 and p2 are left
    assert await store.add("apparel", "none", []) == 0


async def test_recurating_a_product_replaces_its_exemplars(database):
    store = ExemplarStore(database, capacity=10)
    await store.add("apparel", "p", [("old", unit(1)), ("old-back", unit(4))])
    await store.add("apparel", "q", [("q", unit(2))])
    await store.add("apparel", "p", [("new", unit(3))])
    assert await store.categories() == {"apparel": 2}
    np.testing.assert_allclose((await store.recent("apparel", 2))[0], unit(3), atol=HALF)


async def test_another_gateway_reads_the_ring_and_a_smaller_capacity_applies_on_the_next_add(database):
    store = ExemplarStore(database, capacity=10)
    for p in range(6):
        await store.add("apparel", f"p{p}", [("hero", unit(p))])
    async with opened(database.url) as other:
        reopened = ExemplarStore(other, capacity=10)
        assert await reopened.categories() == {"apparel": 6}
        np.testing.assert_allclose((await reopened.recent("apparel", 1))[0], unit(5), atol=HALF)
        smaller = ExemplarStore(other, capacity=3)
        await smaller.add("apparel", "p6", [("hero", unit(6))])
        assert await smaller.categories() == {"apparel": 3}
        np.testing.assert_allclose(await smaller.recent("apparel", 3), np.stack([unit(6), unit(5), unit(4)]), atol=HALF)


async def test_a_failed_add_changes_nothing(database):
    store = ExemplarStore(database, capacity=10)
    await store.add("apparel", "p", [("kept", unit(1))])
    with pytest.raises(psycopg.errors.DataException):  # a vector of the wrong width, after a good one
        await store.add("apparel", "p", [("good", unit(2)), ("short", unit_vectors(1, 3, dim=64)[0])])
    np.testing.assert_allclose(await store.recent("apparel", 5), unit(1)[None], atol=HALF)


async def test_concurrent_adds_through_two_gateways_keep_every_ring_exact(database):
    async with opened(database.url) as other:
        for gateway in (database, other):
            await gateway.check()  # schema checked: a call during a gateway's first check is refused (503)
        stores = [ExemplarStore(database, capacity=10, per_product=2), ExemplarStore(other, capacity=10, per_product=2)]
        full = [stores[p % 2].add("apparel", f"p{p}", [("a", unit(p)), ("b", unit(100 + p))]) for p in range(30)]
        roomy = [stores[p % 2].add("grocery", f"g{p}", [("a", unit(p))]) for p in range(8)]
        same = [stores[n % 2].add("toys", "t", [(f"t{n}", unit(n)), (f"u{n}", unit(n + 50))]) for n in range(10)]
        await asyncio.gather(*full, *roomy, *same)
        assert await stores[0].categories() == {"apparel": 10, "grocery": 8, "toys": 2}
        assert set(rows_per_product(database.url, "apparel").values()) == {2}  # whole products, newest five
        assert rows_per_product(database.url, "toys") == {"t": 2}  # re-curated ten times at once: one set left
        assert len(await stores[1].recent("apparel", 10)) == 5


def test_invalid_bounds():
    with pytest.raises(ValueError):
        ExemplarStore(None, capacity=0)
    with pytest.raises(ValueError):
        ExemplarStore(None, per_product=0)
