"""SearchService: indexing in the partition the decisions give (request, predicted per product, category_unknown),
field errors, and the cascade over a real index (PostgreSQL, a fresh database per test); fakes for the fetcher and
Triton."""

from __future__ import annotations

import pytest

from gateway.clients.database import Database
from gateway.schemas import IndexRequest, SearchRequest
from gateway.services.errors import InvalidField
from gateway.services.search import SearchService
from gateway.stores.search_index import SearchIndex
from tests.gateway.services.fakes import HEAD, FakeTriton, analysis_step, jpeg_b64, one_hot, raw, unit

pytestmark = [pytest.mark.skipif(HEAD is None, reason="categories.toml has no [category_head]"), pytest.mark.anyio]


def service(database: Database, raws) -> SearchService:
    return SearchService(HEAD, analysis_step(FakeTriton(raws)), SearchIndex(database))


def item(product_id: str, image_id: str, seed: int, category=None, url=None) -> dict:
    source = {"url": url} if url else {"data": jpeg_b64(seed)}
    return {"product_id": product_id, "image_id": image_id, "category": category, **source}


async def test_index_places_each_image_and_reports_failures(database):
    raws = [raw(1, one_hot("fruit", 0.6)), raw(2, one_hot("fruit", 0.6)), raw(3, None), raw(4, one_hot("gear", 0.9))]
    search = service(database, raws)
    body = IndexRequest(
        items=[
            item("p1", "a", 1),
            item("p1", "b", 2),
            item("p2", "c", 3),  # no head output, no category: unknown
            item("p3", "d", 4, category=" Gear "),
            item("p4", "e", 5, url="https://cdn.example/e.jpg"),  # fetch fails
        ]
    )
    outcome = await search.index_items(body)
    assert [(i.image_id, i.placement.partition, i.placement.source) for i in outcome.indexed] == [
        ("a", "fruit", "predicted"),
        ("b", "fruit", "predicted"),
        ("d", "gear", "request"),
    ]
    assert outcome.failed == [("c", "category_unknown"), ("e", "fetch_failed")]
    assert await search.partitions() == {"fruit": 2, "gear": 1}
    assert await search.remove_product("p1") == 2 and await search.partitions() == {"gear": 1}


async def test_a_category_that_is_not_a_head_class_is_a_field_error(database):
    search = service(database, [])
    with pytest.raises(InvalidField) as error:
        await search.index_items(IndexRequest(items=[item("p", "a", 1), item("p", "b", 2, category="toaster")]))
    assert error.value.field == "items.1.category"
    query = SearchRequest(image={"data": jpeg_b64(1)}, category="toaster")
    with pytest.raises(InvalidField, match="not a top-level category"):
        await search.search(query)


async def test_search_follows_the_cascade_and_an_unreadable_query_is_a_field_error(database):
    fruit = raw(1, one_hot("fruit", 0.95))  # a sure head: the cascade stays in one partition
    search = service(database, [fruit])
    await search.index.add([("p1", "a", "fruit", fruit.embedding), ("p2", "b", "gear", raw(2).embedding)])
    outcome = await search.search(SearchRequest(image={"data": jpeg_b64(1)}))
    assert (outcome.plan.category, outcome.plan.source, outcome.plan.partitions) == ("fruit", "predicted", ("fruit",))
    assert [h.image_id for h in outcome.hits] == ["a"] and outcome.probabilities["fruit"] == pytest.approx(0.95)
    broken = SearchService(HEAD, analysis_step(FakeTriton([])), search.index)
    with pytest.raises(InvalidField, match=r"image: the query image failed \(fetch_failed\)"):
        await broken.search(SearchRequest(image={"url": "https://cdn.example/q.jpg"}))


async def test_the_index_stores_and_queries_the_search_embedding_when_served(database, caplog):
    """SEARCH_EMBEDDING (the search head's) is what is indexed and what a query compares; EMBEDDING only without it."""
    indexed = raw(1, one_hot("fruit", 0.9), search_embedding=unit(101))
    other = raw(2, one_hot("fruit", 0.9), embedding=indexed.embedding, search_embedding=unit(102))
    search = service(database, [indexed, other])
    await search.index_items(IndexRequest(items=[item("p1", "a", 1), item("p2", "b", 2)]))
    query = raw(3, one_hot("fruit", 0.9), embedding=unit(7), search_embedding=unit(101))
    search.analysis.triton.raws = [query]
    outcome = await search.search(SearchRequest(image={"data": jpeg_b64(3)}))
    assert [h.image_id for h in outcome.hits][0] == "a" and outcome.hits[0].score == pytest.approx(1.0, abs=1e-3)
    search.analysis.triton.raws = [raw(3, one_hot("fruit", 0.9), embedding=unit(101))]  # an older repository
    with caplog.at_level("WARNING"):
        await search.search(SearchRequest(image={"data": jpeg_b64(3)}))
    assert "no SEARCH_EMBEDDING" in caplog.text
