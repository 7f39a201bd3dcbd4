"""The persistent library of known placeholder images ("no image available" pictures), matched by pHash.

Embedded default: one SQLite file under IMGSEL_DATA_DIR. Every change is one transaction in WAL mode with
synchronous=FULL, so an acknowledged add or delete survives kill -9 and a crash never leaves half a batch. Lookups
run against an in-memory copy of the hashes (numpy), rebuilt from the file at start and kept in step on each change.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from gateway.decisions.analysis import LibraryMatch
from gateway.hash_index import HashIndex
from gateway.hashing import radius_for
from gateway.stores.durable import open_durable, transaction
from gateway.stores.interfaces import Placeholder

BANDS = 4  # 16-bit bands: measured fastest at 100k-1M entries (BENCHMARKS.md)

SCHEMA = """
CREATE TABLE IF NOT EXISTS placeholders (
    id TEXT PRIMARY KEY,
    phash INTEGER NOT NULL,      -- 64-bit pHash, stored as the signed integer of the same bits
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    supplier TEXT,
    added_at REAL NOT NULL
)
"""


def to_signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


class PlaceholderLibrary:
    """SQLite implementation of gateway.stores.interfaces.PlaceholderStore."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = open_durable(path, SCHEMA)
        self._reload()

    def _reload(self) -> None:
        rows = self._db.execute(
            "SELECT id, phash, width, height, supplier, added_at FROM placeholders ORDER BY added_at, id"
        ).fetchall()
        self._entries = [Placeholder(r[0], to_unsigned(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
        self._indexes: dict[int, HashIndex] = {}  # by probe radius; built on first use

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entries: list[tuple[str, int, int, int, str | None]]) -> list[str]:
        """(id, phash, width, height, supplier) rows; an existing id is replaced. All or nothing."""
        now = time.time()
        with self._lock:
            with transaction(self._db):
                self._db.executemany(
                    "INSERT OR REPLACE INTO placeholders (id, phash, width, height, supplier, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(i, to_signed(h), w, ht, s, now) for i, h, w, ht, s in entries],
                )
            self._reload()
        return [entry[0] for entry in entries]

    def remove(self, placeholder_id: str) -> bool:
        with self._lock:
            deleted = self._db.execute("DELETE FROM placeholders WHERE id = ?", (placeholder_id,)).rowcount
            self._reload()
        return deleted > 0

    def entries(self) -> list[Placeholder]:
        return list(self._entries)

    def _index(self, max_distance: int) -> HashIndex:
        """Linear scan for small libraries, multi-index hashing above ~20k (gateway.hash_index), probed deep
        enough that every match within `max_distance` is found."""
        radius = radius_for(max_distance, BANDS)
        with self._lock:
            if radius not in self._indexes:
                entries = self._entries
                self._indexes[radius] = HashIndex(
                    [e.id for e in entries],
                    np.array([e.phash for e in entries], dtype=np.uint64),
                    bands=BANDS,
                    radius=radius,
                )
            return self._indexes[radius]

    def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """Nearest known placeholder within `max_distance` bits for each query (ties: the earliest added)."""
        if not self._entries or not phashes:
            return [None] * len(phashes)
        found = self._index(max_distance).nearest(np.array(phashes, dtype=np.uint64), max_distance)
        return [None if hit is None else LibraryMatch(hit[0], hit[1]) for hit in found]
