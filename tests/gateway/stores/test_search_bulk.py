"""Bulk load of a search partition: COPY, indexes built after the load (the parent's, adopted by ATTACH), images the
load does not carry kept, moved image ids leave their old partition, counts exact, and the HNSW index answers searches
above `exact_max`."""

from __future__ import annotations

import psycopg
import pytest

from gateway.stores.search_bulk import load_partition
from gateway.stores.search_index import SearchIndex, partition_table
from tests.database import fresh_database
from tests.gateway.stores.support import opened, unit_vectors

pytestmark = pytest.mark.anyio


def partition_indexes(url: str, name: str) -> list[str]:
    """Index definitions of the partition's table, each attached to one of the parent's indexes."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass ORDER BY 1",
            (partition_table(name),),
        ).fetchall()
    return [definition for (definition,) in rows]


async def test_bulk_load_replaces_carried_images_keeps_others_and_is_searchable():
    url = fresh_database()
    vectors = unit_vectors(40, seed=3)
    async with opened(url) as database:
        index = SearchIndex(database, exact_max=5)
        # Already indexed through the API: one image the load will replace, one it keeps, one that moves partition.
        await index.add([("api", "kept", "fruit", vectors[0]), ("p0", "p0-0", "fruit", vectors[1])])
        await index.add([("p1", "p1-0", "apparel", vectors[2])])
        rows = [(f"p{i}", f"p{i}-0", vectors[10 + i]) for i in range(20)]

        assert load_partition(url, "fruit", rows) == 21  # 20 loaded + "kept"
        assert await index.partitions() == {"fruit": 21}  # p1-0 moved out of apparel
        # Every parent index (primary key, image, product, HNSW) exists on the partition, attached, built once.
        definitions = partition_indexes(url, "fruit")
        assert len(definitions) == 4 and any("hnsw" in d and "halfvec_cosine_ops" in d for d in definitions)
        hits = await index.search(vectors[10 + 7], ["fruit"], k=3)  # above exact_max: the HNSW index
        assert hits[0].image_id == "p7-0" and hits[0].score > 0.99
        assert {h.image_id for h in await index.search(vectors[0], ["fruit"], k=1)} == {"kept"}

        # A second load of the same partition (a rerun, new model version): replaced in place, nothing doubles.
        assert load_partition(url, "fruit", [(p, i, -v) for p, i, v in rows]) == 21
        hits = await index.search(-vectors[10 + 7], ["fruit"], k=1)
        assert hits[0].image_id == "p7-0"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM search_items").fetchone()[0] == 21
