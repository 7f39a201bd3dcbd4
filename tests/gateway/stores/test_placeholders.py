"""The placeholder library in PostgreSQL: 64-bit hashes through BIGINT, replace by id, all or nothing, nearest match
(ties: the earliest added), an acknowledged add that survives kill -9, and each gateway's cached library following
every committed change (made through another gateway, or by hand in SQL) from the next match on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from gateway.decisions.analysis import LibraryMatch
from gateway.hash_index import LINEAR_BELOW
from gateway.hashing import hamming
from gateway.stores import migrate
from gateway.stores.interfaces import LibraryEntry
from gateway.stores.placeholders import VERSION_SQL, PlaceholderLibrary, to_signed
from tests.database import fresh_database
from tests.gateway.stores.support import opened

pytestmark = pytest.mark.anyio

HIGH_BIT = 0xF000_0000_0000_0001  # above 2**63: stored as the signed BIGINT of the same bits
ROOT = Path(__file__).resolve().parents[3]


def version(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute(VERSION_SQL).fetchone()[0]


async def test_add_list_remove_and_read_back_through_another_gateway(database):
    library = PlaceholderLibrary(database)
    assert await library.add([LibraryEntry("a", HIGH_BIT, 100, 80, "S1"), LibraryEntry("b", 0x0F, 10, 10, None)]) == [
        "a",
        "b",
    ]
    assert await library.remove("b") and not await library.remove("b")
    async with opened(database.url) as other:
        [entry] = await PlaceholderLibrary(other).entries()
    assert (entry.id, entry.phash, entry.width, entry.height, entry.supplier) == ("a", HIGH_BIT, 100, 80, "S1")
    assert entry.added_at == pytest.approx(time.time(), abs=60)
    assert await library.add([]) == []


async def test_same_id_replaces(database):
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("a", 1, 1, 1, None)])
    await library.add([LibraryEntry("a", 2, 3, 4, "S")])
    assert [(e.id, e.phash, e.width, e.height, e.supplier) for e in await library.entries()] == [("a", 2, 3, 4, "S")]


async def test_match_nearest_within_distance(database):
    library = PlaceholderLibrary(database)
    assert await library.match([1, 2], 10) == [None, None]  # empty library
    await library.add(
        [LibraryEntry("far", 0xFFFF_FFFF_FFFF_FFFF, 1, 1, None), LibraryEntry("near", 0b1111, 1, 1, None)]
    )
    matches = await library.match([0b0111, 0b0, 0xFFFF_0000_0000_0000], max_distance=4)
    assert matches[0] == LibraryMatch("near", 1)
    assert matches[1] == LibraryMatch("near", 4)
    assert matches[2] is None  # 16 bits from "far", 20 from "near"
    assert await library.match([], 4) == []


async def test_a_distance_tie_goes_to_the_earliest_added_and_a_replacement_counts_as_new(database):
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("z-first", HIGH_BIT, 1, 1, None)])
    await library.add([LibraryEntry("a-second", HIGH_BIT, 1, 1, None)])
    assert await library.match([HIGH_BIT], 0) == [LibraryMatch("z-first", 0)]
    await library.add([LibraryEntry("z-first", HIGH_BIT, 1, 1, None)])  # re-added: now the latest
    assert await library.match([HIGH_BIT], 0) == [LibraryMatch("a-second", 0)]
    assert [e.id for e in await library.entries()] == ["a-second", "z-first"]


async def test_the_whole_picture_key_matches_and_reads_back(database):
    """A row's second key (the whole picture's pHash) is matched like its first, named by the row's id; rows without
    one (stored before it existed) are matched by their pHash alone; a tie between two rows' keys goes to the earliest
    added, whichever key it is."""
    library = PlaceholderLibrary(database)
    await library.add(
        [LibraryEntry("page", 0b1, 1, 1, None, whole_phash=HIGH_BIT), LibraryEntry("plain", 0b11, 1, 1, None)]
    )
    await library.add([LibraryEntry("later", HIGH_BIT ^ 0b1, 1, 1, None, whole_phash=HIGH_BIT)])
    assert await library.match([HIGH_BIT, HIGH_BIT ^ 0b100, 0b1, 0b111], 1) == [
        LibraryMatch("page", 0),  # tie with "later"'s whole key: "page" was added first
        LibraryMatch("page", 1),
        LibraryMatch("page", 0),
        LibraryMatch("plain", 1),
    ]
    assert [(e.id, e.whole_phash) for e in await library.entries()] == [
        ("page", HIGH_BIT),
        ("plain", None),
        ("later", HIGH_BIT),
    ]
    await library.add([LibraryEntry("page", 0b1, 1, 1, None)])  # replaced without a whole key: it is gone
    assert await library.match([HIGH_BIT], 0) == [LibraryMatch("later", 0)]


async def test_a_failed_batch_stores_nothing(database):
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("kept", 7, 1, 1, None)])
    with pytest.raises(psycopg.errors.NotNullViolation):
        await library.add(
            [LibraryEntry("new", 1, 1, 1, None), LibraryEntry("broken", 2, None, 1, None)]
        )  # width NOT NULL
    assert [e.id for e in await library.entries()] == ["kept"]
    assert await library.match([1, 7], 0) == [None, LibraryMatch("kept", 0)]
    await library.add([LibraryEntry("after", 1, 1, 1, None)])  # the server answered: the store is not marked down
    assert await library.match([1], 0) == [LibraryMatch("after", 0)]


def test_acknowledged_add_survives_kill_9():
    """The writer is killed with SIGKILL right after add() returns: the row must be there for the next reader."""
    url = fresh_database()
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from gateway.clients.database import Database
        from gateway.stores.interfaces import LibraryEntry
        from gateway.stores.placeholders import PlaceholderLibrary

        async def main():
            library = PlaceholderLibrary(Database({url!r}, 2, 10.0, False, 2.0))
            await library.add([LibraryEntry("kept", 42, 5, 5, None)])
            print("acknowledged", flush=True)
            os.kill(os.getpid(), {int(signal.SIGKILL)})

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == -signal.SIGKILL and "acknowledged" in result.stdout, result.stderr
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT id, phash FROM placeholders").fetchall() == [("kept", 42)]


async def test_large_library_uses_the_index_and_stays_exact_at_the_default_distance(database):
    """Above the linear-scan size the multi-index is probed deep enough for the configured distance (16 > 15). The
    rows are loaded in one SQL statement, as a bulk import by hand would be."""
    hashes = np.random.default_rng(3).integers(0, 2**64 - 1, size=LINEAR_BELOW + 5_000, dtype=np.uint64).tolist()
    with psycopg.connect(database.url) as connection:
        connection.execute(
            "INSERT INTO placeholders (id, phash, width, height) SELECT 'r' || (n - 1), h, 1, 1 "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(h, n)",
            ([to_signed(h) for h in hashes],),
        )
        connection.execute("UPDATE placeholders SET whole_phash = phash # 65535 WHERE id IN ('r7', 'r8')")
    library = PlaceholderLibrary(database)
    query = hashes[1234] ^ 0xFFFF  # 16 bits away from r1234
    [match, by_whole_key] = await library.match([query, hashes[8]], max_distance=16)
    expected = hamming(np.array(hashes, dtype=np.uint64), query)
    assert match == LibraryMatch(f"r{int(np.argmin(expected))}", int(expected.min()))
    assert match.distance <= 16
    assert by_whole_key == LibraryMatch("r8", 0)  # its first key, not the second that is 16 bits away
    assert await library.match([hashes[7] ^ 0xFFFF], 0) == [LibraryMatch("r7", 0)]  # found by its whole key
    snapshot = await library.snapshot()
    assert len(snapshot.ids) >= LINEAR_BELOW and snapshot.indexes  # the multi-index was built, not the linear scan


async def test_the_cached_library_follows_another_gateway_and_sql_by_hand(database):
    """Gateway A matches from its cache; changes through gateway B's own Database, and raw SQL (insert, update,
    delete, truncate), are seen by A's next match. Unchanged, A reuses its snapshot."""
    mine = PlaceholderLibrary(database)
    assert await mine.match([HIGH_BIT], 0) == [None]
    cached = await mine.snapshot()
    assert await mine.snapshot() is cached  # no change: no reload
    async with opened(database.url) as other_database:
        other = PlaceholderLibrary(other_database)
        await other.add([LibraryEntry("from-b", HIGH_BIT, 1, 1, None)])
        assert await mine.match([HIGH_BIT], 0) == [LibraryMatch("from-b", 0)]
        assert await other.remove("from-b")
        assert await mine.match([HIGH_BIT], 0) == [None]
    with psycopg.connect(database.url, autocommit=True) as sql:
        sql.execute("INSERT INTO placeholders (id, phash, width, height) VALUES ('by-hand', %s, 1, 1)", (to_signed(5),))
        assert await mine.match([5], 0) == [LibraryMatch("by-hand", 0)]
        sql.execute("UPDATE placeholders SET phash = %s WHERE id = 'by-hand'", (to_signed(HIGH_BIT),))
        assert await mine.match([5, HIGH_BIT], 0) == [None, LibraryMatch("by-hand", 0)]
        sql.execute("TRUNCATE placeholders")
        assert await mine.match([HIGH_BIT], 0) == [None]
        sql.execute("INSERT INTO placeholders (id, phash, width, height) VALUES ('again', 9, 1, 1)")
        sql.execute("DELETE FROM placeholders WHERE id = 'again'")
        assert await mine.match([9], 0) == [None]


async def test_concurrent_requests_after_a_change_load_the_library_once(database):
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("a", 1, 1, 1, None)])
    snapshots = await asyncio.gather(*(library.snapshot() for _ in range(12)))
    assert all(s is snapshots[0] for s in snapshots) and snapshots[0].ids == ["a"]


async def test_concurrent_adds_through_two_gateways_lose_nothing(database):
    async with opened(database.url) as other_database:
        for gateway in (database, other_database):
            await gateway.check()  # schema checked: a call during a gateway's first check is refused (503)
        libraries = [PlaceholderLibrary(database), PlaceholderLibrary(other_database)]
        batches = [[LibraryEntry(f"p{b}-{i}", b * 100 + i, 1, 1, None) for i in range(5)] for b in range(30)]
        await asyncio.gather(*(libraries[b % 2].add(batch) for b, batch in enumerate(batches)))
        expected = sorted(row.id for batch in batches for row in batch)
        assert sorted(e.id for e in await libraries[0].entries()) == expected
        for library in libraries:  # both caches hold every row
            matches = await library.match([row.phash for batch in batches for row in batch], 0)
            assert sorted(m.library_id for m in matches) == expected


def version_changes(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT changes FROM version_changes").fetchone()[0]


async def test_one_add_changes_the_library_version_the_same_number_of_times_whatever_its_size(database):
    """One statement per batch: the version trigger fires once per add, not once per row (a 25k-row add through a
    per-row trigger took ~20 s). Counted by a statement trigger of the test's own beside the library's."""
    with psycopg.connect(database.url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE version_changes (changes int NOT NULL); INSERT INTO version_changes VALUES (0);"
            "CREATE FUNCTION count_version_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE version_changes SET changes = changes + 1; RETURN NULL; END $$;"
            "CREATE TRIGGER count_version_change AFTER UPDATE ON state_versions "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_version_change()"
        )
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("one", 1, 1, 1, None)])
    one_row = version_changes(database.url)
    await library.add([LibraryEntry(f"r{i}", i, 1, 1, None) for i in range(500)])
    assert 1 <= one_row <= 2 and version_changes(database.url) == 2 * one_row


async def test_the_cache_follows_a_database_restored_to_an_earlier_version(database):
    library = PlaceholderLibrary(database)
    await library.add(
        [
            LibraryEntry("old-1", 1, 1, 1, None),
            LibraryEntry("old-2", 2, 1, 1, None),
            LibraryEntry("old-3", 3, 1, 1, None),
        ]
    )
    assert await library.match([1], 0) == [LibraryMatch("old-1", 0)]
    cached_version = (await library.snapshot()).version
    await asyncio.to_thread(migrate.downgrade, database.url, "base")  # as a restore of an earlier state would
    await asyncio.to_thread(migrate.upgrade, database.url)
    async with opened(database.url) as other:
        await PlaceholderLibrary(other).add([LibraryEntry("restored", 4, 1, 1, None)])
    assert version(database.url) != cached_version
    assert await library.match([1, 4], 0) == [None, LibraryMatch("restored", 0)]
