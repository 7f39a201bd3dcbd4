"""The persistent store of category exemplars: backbone embeddings of images /v1/select recently accepted, by
category. The unseen-placeholder vote (gateway.decisions.placeholders.exemplar_vote) compares an image with them.

Rows live in the `exemplars` table (embeddings as halfvec, 2.5 KB each for 1280-d), shared by every gateway replica.
Each category is a bounded ring: at most `capacity` rows, the oldest dropped in the transaction that adds new ones. A
product contributes at most `per_product` images, and re-curating a product replaces its earlier exemplars, so one
product cannot fill a category. Writers of one category serialise on an advisory lock, so concurrent replicas keep
the ring exact; readers never wait.
"""

from __future__ import annotations

import numpy as np
from pgvector import HalfVector

from gateway.clients.database import Database

# Advisory-lock key of a category's ring: hashtextextended of this prefix + the category (one key space per use).
LOCK_PREFIX = "imgsel.exemplars:"
# The k most recent exemplars of distinct products of a category (each product's newest row), one product left out.
# Parameters: category, excluded product, k.
RECENT_QUERY = (
    "SELECT embedding FROM ("
    "  SELECT DISTINCT ON (product_id) seq, embedding FROM exemplars"
    "  WHERE category = %s AND product_id IS DISTINCT FROM %s ORDER BY product_id, seq DESC"
    ") best ORDER BY seq DESC LIMIT %s"
)


class ExemplarStore:
    """PostgreSQL implementation of gateway.stores.interfaces.CategoryExemplarStore."""

    def __init__(self, database: Database, capacity: int = 256, per_product: int = 2):
        if capacity < 1 or per_product < 1:
            raise ValueError("exemplar capacity and per_product must be >= 1")
        self.database = database
        self.capacity = capacity
        self.per_product = per_product

    async def add(self, category: str, product_id: str, images: list[tuple[str, np.ndarray]]) -> int:
        """Store up to `per_product` (image_id, embedding) of one product, best first, replacing the product's
        earlier exemplars in this category. Returns how many were stored. All or nothing."""
        images = images[: self.per_product]
        if not images:
            return 0
        async with self.database.transaction(pipeline=True) as db:
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (LOCK_PREFIX + category,))
            await db.execute("DELETE FROM exemplars WHERE category = %s AND product_id = %s", (category, product_id))
            async with db.cursor() as cursor:
                # Best image inserted last: the most recent row of the product is its best.
                await cursor.executemany(
                    "INSERT INTO exemplars (category, product_id, image_id, embedding) VALUES (%s, %s, %s, %b)",
                    [(category, product_id, image_id, HalfVector(e)) for image_id, e in reversed(images)],
                )
            await db.execute(
                "DELETE FROM exemplars WHERE category = %(c)s AND seq <= "
                "(SELECT seq FROM exemplars WHERE category = %(c)s ORDER BY seq DESC OFFSET %(keep)s LIMIT 1)",
                {"c": category, "keep": self.capacity},
            )
        return len(images)

    async def categories(self) -> dict[str, int]:
        async with self.database.transaction() as db:
            rows = await (await db.execute("SELECT category, count(*) FROM exemplars GROUP BY category")).fetchall()
        return dict(sorted(rows))

    async def recent(self, category: str, k: int, exclude_product: str | None = None) -> np.ndarray:
        """[m <= k, D] float32 embeddings of the k most recent exemplars of distinct products (the product's best
        image), skipping `exclude_product` (a product is never its own exemplar)."""
        async with self.database.statement() as db:
            cursor = await db.execute(
                RECENT_QUERY,
                (category, exclude_product, k),
                # Binary results: pgvector's binary loader copies the float16 words, where the text form would be
                # parsed number by number in Python (~0.6 ms per 1280-d row). Same values: halfvec's text output
                # is the shortest decimal that round-trips.
                binary=True,
            )
            rows = await cursor.fetchall()
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.stack([row[0].to_numpy() for row in rows]).astype(np.float32)
