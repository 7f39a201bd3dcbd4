"""The persistent library of known placeholder images ("no image available" pictures), matched by pHash.

Rows live in the `placeholders` table (pHash as BIGINT, and the whole picture's pHash where known: migration 0002).
Matching stays in process, exact and fast: each gateway keeps a cache of (id, key) pairs, a row's content-box pHash and
its whole-picture pHash, with its multi-index hash tables (gateway.hash_index), tagged with the library's version, a
random value that a trigger replaces in the transaction of every change (migration 0001). For each product the
gateway reads the version (one indexed single-row query, while the product's images are in the models) and reloads
when it moved, so a placeholder added or deleted through any replica, or by hand in SQL, is matched or forgotten
everywhere from the next request on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from gateway.clients.database import Database
from gateway.decisions.analysis import LibraryMatch
from gateway.hash_index import LINEAR_BELOW, HashIndex
from gateway.hashing import radius_for
from gateway.stores.interfaces import LibraryEntry, Placeholder

BANDS = 4  # 16-bit bands: measured fastest at 100k-1M entries (BENCHMARKS.md)
RELOAD_CHUNK = 20_000  # rows converted between two yields to the event loop
VERSION_SQL = "SELECT version FROM state_versions WHERE name = 'placeholders'"
ORDER = "ORDER BY added_at, id"  # "earliest added" breaks distance ties


def to_signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


@dataclass
class LibrarySnapshot:
    """The library as of one version: (id, key) pairs in tie-break order (a row's content-box pHash, then its
    whole-picture pHash: one id may appear twice), and its indexes by probe radius."""

    version: int
    ids: list[str]  # the placeholder each key belongs to
    hashes: np.ndarray  # uint64 keys
    indexes: dict[int, HashIndex] = field(default_factory=dict)

    def index(self, radius: int) -> HashIndex:
        """Linear scan for small libraries, multi-index hashing above ~20k (gateway.hash_index); keys by row, their
        placeholders in `ids`."""
        if radius not in self.indexes:
            self.indexes[radius] = HashIndex.of_hashes(self.hashes, bands=BANDS, radius=radius)
            self.indexes[radius].build()
        return self.indexes[radius]

    async def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """gateway.stores.interfaces.LibraryView.match: the nearest key's placeholder (ties: the earliest added)."""
        if not phashes:
            return []
        if not self.ids:
            return [None] * len(phashes)
        radius = radius_for(max_distance, BANDS)
        if radius not in self.indexes and len(self.ids) >= LINEAR_BELOW:
            # Building the band tables of a large library takes seconds of CPU (1M: ~1.4 s): off the event loop.
            await asyncio.to_thread(self.index, radius)
        return self.nearest(np.array(phashes, dtype=np.uint64), max_distance)

    def nearest(self, queries: np.ndarray, max_distance: int) -> list[LibraryMatch | None]:
        """The placeholder of the nearest key within `max_distance` of each query (ties: the earliest key)."""
        keys, distances = self.index(radius_for(max_distance, BANDS)).nearest_rows(queries, max_distance)
        return [
            None if key < 0 else LibraryMatch(self.ids[key], distance)
            for key, distance in zip(keys.tolist(), distances.tolist())
        ]


class PlaceholderLibrary:
    """PostgreSQL implementation of gateway.stores.interfaces.PlaceholderStore."""

    def __init__(self, database: Database):
        self.database = database
        self._snapshot: LibrarySnapshot | None = None
        self._reload_lock = asyncio.Lock()

    async def add(self, entries: list[LibraryEntry]) -> list[str]:
        """An existing id is replaced. All or nothing."""
        if not entries:
            return []
        columns = [
            [e.id for e in entries],
            [to_signed(e.phash) for e in entries],
            [None if e.whole_phash is None else to_signed(e.whole_phash) for e in entries],
            [e.width for e in entries],
            [e.height for e in entries],
            [e.supplier for e in entries],
        ]
        async with self.database.transaction() as db:
            # One statement for the batch: the version trigger fires once, not once per row (and never rewrites
            # the version row thousands of times in one transaction).
            await db.execute(
                "INSERT INTO placeholders (id, phash, whole_phash, width, height, supplier) "
                "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::int[], %s::int[], %s::text[]) "
                "ON CONFLICT (id) DO UPDATE SET phash = excluded.phash, whole_phash = excluded.whole_phash, "
                "width = excluded.width, height = excluded.height, supplier = excluded.supplier, "
                "added_at = clock_timestamp()",
                columns,
            )
        return [e.id for e in entries]

    async def remove(self, placeholder_id: str) -> bool:
        async with self.database.transaction() as db:
            cursor = await db.execute("DELETE FROM placeholders WHERE id = %s", (placeholder_id,))
            return cursor.rowcount > 0

    async def entries(self) -> list[Placeholder]:
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "SELECT id, phash, width, height, supplier, extract(epoch FROM added_at)::float8, whole_phash "
                f"FROM placeholders {ORDER}"
            )
            rows = await cursor.fetchall()
        return [
            Placeholder(
                r[0], to_unsigned(r[1]), r[2], r[3], r[4], None if r[6] is None else to_unsigned(r[6]), added_at=r[5]
            )
            for r in rows
        ]

    async def snapshot(self) -> LibrarySnapshot:
        """The library as of now: the cached snapshot when its version is still current, else a fresh one (loaded
        once however many requests ask at the same moment)."""
        async with self.database.statement() as db:
            version = (await (await db.execute(VERSION_SQL)).fetchone())[0]
        if self._snapshot is not None and self._snapshot.version == version:
            return self._snapshot
        async with self._reload_lock:
            # Any other version means another library (versions are random: also after a restore or a re-creation).
            if self._snapshot is None or self._snapshot.version != version:
                async with self.database.transaction() as db:
                    # One snapshot for the version and the rows: they belong together even while others write.
                    await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    current = (await (await db.execute(VERSION_SQL)).fetchone())[0]
                    cursor = await db.execute(f"SELECT id, phash, whole_phash FROM placeholders {ORDER}")
                    ids: list[str] = []
                    hashes: list[int] = []
                    # Rows are turned into Python objects a chunk at a time, yielding to the event loop in between
                    # (a million-entry library would otherwise hold it for a second).
                    while rows := await cursor.fetchmany(RELOAD_CHUNK):
                        for placeholder_id, phash, whole in rows:
                            # each key right after its row's first: a distance tie still goes to the earliest added
                            keys = (phash,) if whole is None or whole == phash else (phash, whole)
                            ids += [placeholder_id] * len(keys)
                            hashes += keys
                        await asyncio.sleep(0)
                self._snapshot = LibrarySnapshot(current, ids, np.array(hashes, dtype=np.int64).view(np.uint64))
            return self._snapshot

    async def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """Nearest known placeholder within `max_distance` bits of either of its keys for each query (ties: the
        earliest added), as of now."""
        if not phashes:
            return []
        return await (await self.snapshot()).match(phashes, max_distance)
