"""The SQLite -> PostgreSQL import of a data directory: everything arrives, nothing doubles on a second run."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np

from gateway.clients.database import Database
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex
from gateway.stores.sqlite_import import import_data_dir, main
from tests.database import fresh_database

# The schemas the gateway's SQLite stores wrote (commit 407aba2).
OLD_SCHEMAS = {
    "placeholders.sqlite": "CREATE TABLE placeholders (id TEXT PRIMARY KEY, phash INTEGER NOT NULL, width INTEGER "
    "NOT NULL, height INTEGER NOT NULL, supplier TEXT, added_at REAL NOT NULL)",
    "exemplars.sqlite": "CREATE TABLE exemplars (seq INTEGER PRIMARY KEY AUTOINCREMENT, category TEXT NOT NULL, "
    "product_id TEXT NOT NULL, image_id TEXT NOT NULL, embedding BLOB NOT NULL, added_at REAL NOT NULL)",
    "search.sqlite": "CREATE TABLE items (image_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, "
    "partition TEXT NOT NULL, embedding BLOB NOT NULL, added_at REAL NOT NULL)",
}


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=1280).astype(np.float32)
    return v / np.linalg.norm(v)


def f16(seed: int) -> bytes:
    return unit(seed).astype(np.float16).tobytes()


def old_data_dir(path):
    for name, schema in OLD_SCHEMAS.items():
        with sqlite3.connect(path / name) as db:
            db.execute(schema)
    with sqlite3.connect(path / "placeholders.sqlite") as db:
        # pHash 2**63 + 5 stored as the signed integer of its bits; "late" and "early" tie on distance
        db.executemany(
            "INSERT INTO placeholders VALUES (?, ?, ?, ?, ?, ?)",
            [("late", -(2**63) + 5, 300, 200, "shop", 2000.0), ("early", -(2**63) + 5, 10, 10, None, 1000.0)],
        )
    with sqlite3.connect(path / "exemplars.sqlite") as db:
        rows = [("apparel", f"p{i}", f"p{i}-{j}", f16(10 * i + j), float(i)) for i in range(4) for j in range(2)]
        db.executemany(
            "INSERT INTO exemplars (category, product_id, image_id, embedding, added_at) VALUES (?, ?, ?, ?, ?)", rows
        )
    with sqlite3.connect(path / "search.sqlite") as db:
        rows = [(f"i{i}", f"prod{i // 2}", "fruit" if i < 6 else "gear", f16(100 + i), 0.0) for i in range(9)]
        db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", rows)


async def state(url: str):
    database = Database(url, 2, 5.0, False, 0.0)
    try:
        library = PlaceholderLibrary(database)
        entries = [(p.id, p.phash, p.width, p.height, p.supplier) for p in await library.entries()]
        match = await library.match([2**63 + 5], 4)
        recent = await ExemplarStore(database).recent("apparel", 10)
        index = SearchIndex(database)
        hit = await index.search(unit(103), ["fruit"], 1, per_product=False)
        return entries, match, recent, await index.partitions(), hit
    finally:
        await database.close()


def test_import_copies_all_three_stores_and_is_idempotent(tmp_path):
    old_data_dir(tmp_path)
    url = fresh_database(migrated=False)  # the import migrates first
    done = asyncio.run(import_data_dir(tmp_path, url))
    assert (done.placeholders, done.exemplars, done.search_images) == (2, 8, 9)
    first = asyncio.run(state(url))
    entries, match, recent, partitions, hit = first
    assert entries == [("early", 2**63 + 5, 10, 10, None), ("late", 2**63 + 5, 300, 200, "shop")]
    assert match[0].library_id == "early"  # ties go to the earliest added, as before the move
    # One exemplar per product, most recent product first, each product's best (last inserted) image.
    assert recent.shape == (4, 1280)
    assert np.allclose(recent[0], unit(31), atol=2e-3) and np.allclose(recent[3], unit(1), atol=2e-3)
    assert partitions == {"fruit": 6, "gear": 3}
    assert hit[0].image_id == "i3" and hit[0].score > 0.999

    assert main([str(tmp_path), "--url", url]) == 0  # the command, a second time
    second = asyncio.run(state(url))
    assert second[0] == first[0] and second[3] == first[3]
    assert np.array_equal(second[2], first[2])


def test_missing_files_are_skipped(tmp_path):
    done = asyncio.run(import_data_dir(tmp_path, fresh_database()))
    assert (done.placeholders, done.exemplars, done.search_images) == (0, 0, 0)
