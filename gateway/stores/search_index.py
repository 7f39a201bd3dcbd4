"""The visual-search index: catalog images' backbone embeddings, partitioned by top-level category, persistent.

Embedded default: one SQLite file under IMGSEL_DATA_DIR (`search.sqlite`). Every change is one transaction in WAL mode
with synchronous=FULL (an acknowledged add survives kill -9; a batch is stored whole or not at all). Vectors are kept
as float16 on disk (2.5 KB per 1280-d image) and float32 in memory, one matrix per partition.

Search inside a partition is exact (inner product of L2-normalised embeddings = cosine) up to `exact_max` vectors,
and approximate above: a faiss HNSW graph (M = 32, efSearch = `ef_search`) built lazily on the first search after the
partition was reloaded; new images are added to an existing graph, while a replacement or a deletion reloads the
partition and its graph is rebuilt on the next search (seconds per 10k images, under the index lock: searches wait).
Which partitions a query searches is decided by `gateway.decisions.search.search_partitions` (the category cascade);
this module only stores and searches.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from gateway.stores.durable import open_durable, transaction
from gateway.stores.interfaces import Hit

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    image_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    partition TEXT NOT NULL,     -- top-level category (a class of the category head)
    embedding BLOB NOT NULL,     -- float16, L2-normalised
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_product ON items (product_id);
"""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80


class _Partition:
    """One partition's vectors and ids in memory, with its HNSW graph when large (rebuilt when stale)."""

    def __init__(self) -> None:
        self.image_ids: list[str] = []
        self.product_ids: list[str] = []
        self.vectors = np.zeros((0, 0), np.float32)
        self.graph = None  # faiss.IndexHNSWFlat or None (exact search)

    def append(self, items: list[tuple[str, str, str, np.ndarray]]) -> None:
        """New images only (no id already here): extend the matrix and add them to the graph if it exists, so bulk
        indexing into a large partition does not rebuild its graph."""
        vectors = np.stack([np.asarray(e, dtype=np.float16) for *_, e in items]).astype(np.float32)
        self.product_ids += [product_id for product_id, *_ in items]
        self.image_ids += [image_id for _, image_id, *_ in items]
        self.vectors = np.concatenate([self.vectors, vectors]) if len(self.vectors) else vectors
        if self.graph is not None:
            self.graph.add(vectors)

    def search(self, query: np.ndarray, k: int, exact_max: int, ef_search: int) -> list[tuple[int, float]]:
        n = len(self.image_ids)
        if n == 0:
            return []
        k = min(k, n)
        if n <= exact_max:
            scores = self.vectors @ query
            top = np.argpartition(-scores, k - 1)[:k]
            return [(int(i), float(scores[i])) for i in top[np.argsort(-scores[top])]]
        if self.graph is None:
            import faiss

            graph = faiss.IndexHNSWFlat(self.vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            graph.add(self.vectors)
            self.graph = graph
        self.graph.hnsw.efSearch = max(ef_search, k)
        scores, rows = self.graph.search(query[None, :].astype(np.float32), k)
        return [(int(i), float(s)) for i, s in zip(rows[0], scores[0]) if i >= 0]


class SearchIndex:
    """SQLite implementation of gateway.stores.interfaces.SearchIndexStore."""

    def __init__(self, path: Path, exact_max: int = 20_000, ef_search: int = 64):
        self.path = path
        self.exact_max = exact_max
        self.ef_search = ef_search
        self._lock = threading.Lock()
        self._db = open_durable(path, SCHEMA)
        self._partitions: dict[str, _Partition] = {}
        with self._lock:
            for (name,) in self._db.execute("SELECT DISTINCT partition FROM items").fetchall():
                self._load(name)

    def close(self) -> None:
        self._db.close()

    def _load(self, name: str) -> None:
        rows = self._db.execute(
            "SELECT image_id, product_id, embedding FROM items WHERE partition = ? ORDER BY rowid", (name,)
        ).fetchall()
        if not rows:
            self._partitions.pop(name, None)
            return
        partition = _Partition()
        partition.append(
            [(product_id, image_id, name, np.frombuffer(e, np.float16)) for image_id, product_id, e in rows]
        )
        self._partitions[name] = partition

    def add(self, items: list[tuple[str, str, str, np.ndarray]]) -> list[str]:
        """Store (product_id, image_id, partition, embedding) rows; an image_id already indexed is replaced (also
        when it moves partition). All or nothing. Returns the image ids stored."""
        if not items:
            return []
        now = time.time()
        with self._lock:
            placeholders = ",".join("?" * len(items))
            # Partitions that already hold one of these image ids: replaced there, so they are reloaded.
            replaced = {
                name
                for (name,) in self._db.execute(
                    f"SELECT DISTINCT partition FROM items WHERE image_id IN ({placeholders})", [i[1] for i in items]
                )
            }
            with transaction(self._db):
                self._db.executemany(
                    "INSERT OR REPLACE INTO items (image_id, product_id, partition, embedding, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (image_id, product_id, partition, np.asarray(e, dtype=np.float16).tobytes(), now)
                        for product_id, image_id, partition, e in items
                    ],
                )
            for name in replaced | {partition for _, _, partition, _ in items}:
                if name in replaced or name not in self._partitions:
                    self._load(name)  # a replacement (or a new partition): reload, the graph is rebuilt lazily
                else:
                    self._partitions[name].append([i for i in items if i[2] == name])
        return [image_id for _, image_id, _, _ in items]

    def remove_product(self, product_id: str) -> int:
        """Delete every image of a product; returns how many were removed."""
        with self._lock:
            names = [
                n
                for (n,) in self._db.execute(
                    "SELECT DISTINCT partition FROM items WHERE product_id = ?", (product_id,)
                ).fetchall()
            ]
            removed = self._db.execute("DELETE FROM items WHERE product_id = ?", (product_id,)).rowcount
            for name in names:
                self._load(name)
        return removed

    def partitions(self) -> dict[str, int]:
        """Partition -> number of indexed images."""
        return {name: len(p.image_ids) for name, p in sorted(self._partitions.items())}

    def search(self, query: np.ndarray, partitions: list[str], k: int, per_product: bool = True) -> list[Hit]:
        """The k best images over the given partitions, by cosine similarity. `per_product`: keep only a product's
        best image (a results page lists products), fetching more candidates so k products come back when possible."""
        query = np.asarray(query, dtype=np.float32)
        hits: list[Hit] = []
        fetch = k * 4 if per_product else k
        with self._lock:
            for name in partitions:
                partition = self._partitions.get(name)
                if partition is None:
                    continue
                for row, score in partition.search(query, fetch, self.exact_max, self.ef_search):
                    hits.append(Hit(partition.product_ids[row], partition.image_ids[row], name, score))
        hits.sort(key=lambda h: (-h.score, h.image_id))
        if per_product:
            seen: set[str] = set()
            unique = []
            for hit in hits:
                if hit.product_id not in seen:
                    seen.add(hit.product_id)
                    unique.append(hit)
            hits = unique
        return hits[:k]
