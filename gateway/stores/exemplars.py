"""The persistent store of category exemplars: backbone embeddings of images /v1/select recently accepted, by
category. The unseen-placeholder vote (gateway.decisions.placeholders.exemplar_vote) compares an image with them.

Embedded default: one SQLite file under IMGSEL_DATA_DIR (`exemplars.sqlite`, beside `placeholders.sqlite`). Each
category is a bounded ring: at most `capacity` rows, the oldest dropped in the same transaction that adds new ones.
A product contributes at most `per_product` images, and re-curating a product replaces its earlier exemplars, so one
product cannot fill a category. Every change is one transaction in WAL mode with synchronous=FULL (an acknowledged
add survives kill -9; a crash never leaves half a batch). Reads come from an in-memory copy kept in step with the file.
Embeddings are stored as float16 (2.5 KB each for 1280-d).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from gateway.stores.durable import open_durable, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS exemplars (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- insertion order: larger is more recent
    category TEXT NOT NULL,
    product_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    embedding BLOB NOT NULL,                 -- float16, L2-normalised
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS exemplars_by_category ON exemplars (category, seq);
"""


class ExemplarStore:
    """SQLite implementation of gateway.stores.interfaces.CategoryExemplarStore."""

    def __init__(self, path: Path, capacity: int = 256, per_product: int = 2):
        if capacity < 1 or per_product < 1:
            raise ValueError("exemplar capacity and per_product must be >= 1")
        self.path = path
        self.capacity = capacity
        self.per_product = per_product
        self._lock = threading.Lock()
        self._db = open_durable(path, SCHEMA)
        # category -> rows most recent first: (product_id, image_id, embedding float32)
        self._rows: dict[str, list[tuple[str, str, np.ndarray]]] = {}
        with self._lock:
            for (category,) in self._db.execute("SELECT DISTINCT category FROM exemplars").fetchall():
                self._trim(category)  # a smaller capacity than the file was written with applies at once
                self._load(category)

    def close(self) -> None:
        self._db.close()

    def _load(self, category: str) -> None:
        rows = self._db.execute(
            "SELECT product_id, image_id, embedding FROM exemplars WHERE category = ? ORDER BY seq DESC", (category,)
        ).fetchall()
        self._rows[category] = [(p, i, np.frombuffer(e, dtype=np.float16).astype(np.float32)) for p, i, e in rows]

    def _trim(self, category: str) -> None:
        self._db.execute(
            "DELETE FROM exemplars WHERE category = ? AND seq NOT IN "
            "(SELECT seq FROM exemplars WHERE category = ? ORDER BY seq DESC LIMIT ?)",
            (category, category, self.capacity),
        )

    def add(self, category: str, product_id: str, images: list[tuple[str, np.ndarray]]) -> int:
        """Store up to `per_product` (image_id, embedding) of one product, best first, replacing the product's
        earlier exemplars in this category. Returns how many were stored. All or nothing."""
        images = images[: self.per_product]
        if not images:
            return 0
        now = time.time()
        with self._lock:
            with transaction(self._db):
                self._db.execute("DELETE FROM exemplars WHERE category = ? AND product_id = ?", (category, product_id))
                # Best image inserted last: the most recent row of the product is its best.
                self._db.executemany(
                    "INSERT INTO exemplars (category, product_id, image_id, embedding, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (category, product_id, image_id, np.asarray(e, dtype=np.float16).tobytes(), now)
                        for image_id, e in reversed(images)
                    ],
                )
                self._trim(category)
            self._load(category)
        return len(images)

    def count(self, category: str) -> int:
        return len(self._rows.get(category, ()))

    def categories(self) -> dict[str, int]:
        return {category: len(rows) for category, rows in self._rows.items()}

    def recent(self, category: str, k: int, exclude_product: str | None = None) -> np.ndarray:
        """[m <= k, D] embeddings of the k most recent exemplars of distinct products (the product's best image),
        skipping `exclude_product` (a product is never its own exemplar)."""
        chosen: list[np.ndarray] = []
        seen: set[str] = set()
        for product_id, _image_id, embedding in self._rows.get(category, ()):
            if product_id == exclude_product or product_id in seen:
                continue
            seen.add(product_id)
            chosen.append(embedding)
            if len(chosen) == k:
                break
        if not chosen:
            return np.zeros((0, 0), np.float32)
        return np.stack(chosen)
