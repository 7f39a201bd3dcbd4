"""The visual-search index: catalog images' backbone embeddings, partitioned by top-level category, in PostgreSQL.

`search_items` is list-partitioned by top-level category (the cascade's partitions); a category's partition table is
created on its first image. Vectors are halfvec (2.5 KB per 1280-d image), each partition has its own HNSW index
(pgvector, `halfvec_cosine_ops`, m 16, ef_construction 64; declared once on the parent), and `search_partitions`
holds each partition's exact size, kept in the transaction of every change.

Search inside a partition is an exact scan up to `exact_max` images (faster than the graph there, and exact) and an
HNSW index scan above, with `hnsw.ef_search = max(ef_search, candidates)`. Adding an image id that is already indexed
replaces it (also when it moves partition); removing a product deletes its images in every partition. Each call is one
transaction, so a reader sees a batch whole or not at all, and a crashed writer leaves nothing behind. Which partitions
a query searches is decided by `gateway.decisions.search.search_partitions`; this module only stores and searches.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from pgvector import HalfVector
from psycopg import AsyncConnection, sql

from gateway.clients.database import Database
from gateway.stores.interfaces import Hit

PARTITIONS_LOCK = "imgsel.search_partitions"  # advisory-lock name: creating partition tables
IMAGE_LOCK_PREFIX = "imgsel.search_image:"  # advisory-lock names: one indexed image id (replacement across partitions)


def partition_table(name: str) -> str:
    """A partition's table name: readable, within PostgreSQL's 63 bytes, unique per name (hash suffix)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:32] or "p"
    return f"search_items_{slug}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def best_per_product(hits: list[Hit], k: int) -> list[Hit]:
    """Hits sorted best first with ties by image id; with `k` products at most, each product's best image only."""
    seen: set[str] = set()
    unique = []
    for hit in hits:
        if hit.product_id not in seen:
            seen.add(hit.product_id)
            unique.append(hit)
    return unique[:k]


class SearchIndex:
    """PostgreSQL implementation of gateway.stores.interfaces.SearchIndexStore."""

    def __init__(self, database: Database, exact_max: int = 2_000, ef_search: int = 100):
        self.database = database
        self.exact_max = exact_max
        self.ef_search = ef_search

    async def _ensure_partitions(self, names: set[str]) -> None:
        """Create the partition tables that do not exist yet, in their own short transaction (attaching a partition
        locks the parent table, which must not be held through a whole batch)."""
        async with self.database.transaction() as db:
            cursor = await db.execute("SELECT name FROM search_partitions WHERE name = ANY(%s)", (list(names),))
            missing = names - {name for (name,) in await cursor.fetchall()}
        if not missing:
            return
        async with self.database.transaction() as db:
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (PARTITIONS_LOCK,))
            for name in sorted(missing):
                table = partition_table(name)
                created = await db.execute(
                    "INSERT INTO search_partitions (name, table_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (name, table),
                )
                if created.rowcount:
                    await db.execute(
                        sql.SQL("CREATE TABLE {} PARTITION OF search_items FOR VALUES IN ({})").format(
                            sql.Identifier(table), sql.Literal(name)
                        )
                    )

    async def add(self, items: list[tuple[str, str, str, np.ndarray]]) -> list[str]:
        """Store (product_id, image_id, partition, embedding) rows; an image_id already indexed is replaced (also
        when it moves partition; the last row wins when a batch repeats an id). All or nothing. The ids stored."""
        if not items:
            return []
        latest = {image_id: (product_id, image_id, partition, e) for product_id, image_id, partition, e in items}
        rows = list(latest.values())
        await self._ensure_partitions({partition for _, _, partition, _ in rows})
        image_ids = sorted(latest)
        async with self.database.transaction() as db:
            # Same image id written by two requests at once: one after the other (sorted keys: no deadlock).
            await db.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s || i, 0)) FROM unnest(%s::text[]) AS i",
                (IMAGE_LOCK_PREFIX, image_ids),
            )
            cursor = await db.execute(
                "DELETE FROM search_items WHERE image_id = ANY(%s) RETURNING partition", (image_ids,)
            )
            change: dict[str, int] = {}
            for (name,) in await cursor.fetchall():
                change[name] = change.get(name, 0) - 1
            async with db.cursor() as insert:
                await insert.executemany(
                    "INSERT INTO search_items (partition, image_id, product_id, embedding) VALUES (%s, %s, %s, %s)",
                    [(partition, image_id, product_id, HalfVector(e)) for product_id, image_id, partition, e in rows],
                )
            for _, _, partition, _ in rows:
                change[partition] = change.get(partition, 0) + 1
            await self._count(db, change)
        return [image_id for _, image_id, _, _ in items]

    @staticmethod
    async def _count(db: AsyncConnection, change: dict[str, int]) -> None:
        """Apply size changes to search_partitions in name order (concurrent writers lock rows in one order)."""
        for name in sorted(change):
            if change[name]:
                await db.execute(
                    "UPDATE search_partitions SET images = images + %s WHERE name = %s", (change[name], name)
                )

    async def remove_product(self, product_id: str) -> int:
        """Delete every image of a product; returns how many were removed."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM search_items WHERE product_id = %s RETURNING partition", (product_id,)
            )
            change: dict[str, int] = {}
            for (name,) in await cursor.fetchall():
                change[name] = change.get(name, 0) - 1
            await self._count(db, change)
        return -sum(change.values())

    async def partitions(self) -> dict[str, int]:
        """Partition -> number of indexed images (partitions that hold none are left out)."""
        async with self.database.transaction() as db:
            cursor = await db.execute("SELECT name, images FROM search_partitions WHERE images > 0 ORDER BY name")
            return dict(await cursor.fetchall())

    async def search(self, query: np.ndarray, partitions: list[str], k: int, per_product: bool = True) -> list[Hit]:
        """The k best images over the given partitions, by cosine similarity. `per_product`: keep only a product's
        best image (a results page lists products), fetching more candidates so k products come back when possible."""
        candidates = k * 4 if per_product else k
        vector = HalfVector(np.asarray(query, dtype=np.float32))
        hits: list[Hit] = []
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "SELECT name, table_name, images FROM search_partitions WHERE name = ANY(%s) AND images > 0",
                (list(partitions),),
            )
            found = await cursor.fetchall()
            await db.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(self.ef_search, candidates)),))
            for name, table, size in found:
                exact = size <= self.exact_max
                # Exact: a sequential scan with a top-k sort; else the partition's HNSW index (the planner would
                # often prefer the scan for a few thousand rows: it is told which one to use).
                await db.execute(
                    "SELECT set_config('enable_indexscan', %s, true), set_config('enable_seqscan', %s, true)",
                    ("off", "on") if exact else ("on", "off"),
                )
                cursor = await db.execute(
                    sql.SQL(
                        "SELECT product_id, image_id, 1 - (embedding <=> %s) FROM {} ORDER BY embedding <=> %s LIMIT %s"
                    ).format(sql.Identifier(table)),
                    (vector, vector, candidates),
                )
                hits += [Hit(p, i, name, float(score)) for p, i, score in await cursor.fetchall()]
        hits.sort(key=lambda h: (-h.score, h.image_id))
        return best_per_product(hits, k) if per_product else hits[:k]
