"""Copy a data directory's SQLite stores (the state format before PostgreSQL: `placeholders.sqlite`,
`exemplars.sqlite`, `search.sqlite` under IMGSEL_DATA_DIR) into the database:

    python -m gateway.stores.sqlite_import [DATA_DIR] [--url URL]     (defaults: IMGSEL_DATA_DIR, IMGSEL_DATABASE_URL)

Idempotent: placeholders are upserted by id (keeping when they were added, which breaks match ties), search images
are replaced by image id, and each product's exemplars replace that product's exemplars in its category (products
in their original order, so the ring keeps the same most recent ones). Running it twice leaves the same content.
A missing file is skipped. The schema is migrated to head first.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.clients.database import Database
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.search_index import SearchIndex

BATCH = 1000  # rows per transaction

# The SQLite tables as the gateway wrote them (up to commit 407aba2), read here and nowhere else.
PLACEHOLDERS_SQL = "SELECT id, phash, width, height, supplier, added_at FROM placeholders ORDER BY added_at, id"
EXEMPLARS_SQL = "SELECT category, product_id, image_id, embedding FROM exemplars ORDER BY seq"
SEARCH_SQL = "SELECT product_id, image_id, partition, embedding FROM items ORDER BY rowid"


@dataclass
class Imported:
    placeholders: int = 0
    exemplars: int = 0
    search_images: int = 0


def _rows(path: Path, query: str) -> Iterator[tuple]:
    if not path.is_file():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read-only: the source is never changed
    try:
        yield from db.execute(query)
    finally:
        db.close()


def _batches(rows: Iterator[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


async def import_placeholders(database: Database, path: Path) -> int:
    count = 0
    for batch in _batches(_rows(path, PLACEHOLDERS_SQL)):
        async with database.transaction() as db, db.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO placeholders (id, phash, width, height, supplier, added_at) "
                "VALUES (%s, %s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (id) DO UPDATE SET phash = excluded.phash, "
                "width = excluded.width, height = excluded.height, supplier = excluded.supplier, "
                "added_at = excluded.added_at",
                batch,  # SQLite kept the pHash as the signed integer of its bits, as BIGINT does,
            )
        count += len(batch)
    return count


async def import_exemplars(database: Database, path: Path, capacity: int, per_product: int) -> int:
    """Per product in the order of its newest row: its images best (newest) first, as ExemplarStore.add takes them."""
    products: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    for category, product_id, image_id, blob in _rows(path, EXEMPLARS_SQL):
        key = (category, product_id)
        products.setdefault(key, []).insert(0, (image_id, _vector(blob)))
        products[key] = products.pop(key)  # moved to the end: dict order = order of each product's newest row
    store = ExemplarStore(database, capacity, per_product)
    count = 0
    for (category, product_id), images in products.items():
        count += await store.add(category, product_id, images)
    return count


async def import_search(database: Database, path: Path) -> int:
    index = SearchIndex(database)
    count = 0
    for batch in _batches(_rows(path, SEARCH_SQL)):
        count += len(await index.add([(p, i, partition, _vector(e)) for p, i, partition, e in batch]))
    return count


async def import_data_dir(data_dir: Path, url: str, capacity: int = 256, per_product: int = 2) -> Imported:
    database = Database(url, pool_size=2, timeout_s=30.0, migrate_schema=True, breaker_cooldown_s=0.0)
    try:
        return Imported(
            placeholders=await import_placeholders(database, data_dir / "placeholders.sqlite"),
            exemplars=await import_exemplars(database, data_dir / "exemplars.sqlite", capacity, per_product),
            search_images=await import_search(database, data_dir / "search.sqlite"),
        )
    finally:
        await database.close()


def main(argv: list[str] | None = None) -> int:
    from gateway.settings import Settings

    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=Path(settings.data_dir))
    parser.add_argument("--url", help="database URL (default: IMGSEL_DATABASE_URL)")
    args = parser.parse_args(argv)
    url = args.url or settings.database_url.get_secret_value()
    if not url:
        print("no database: set IMGSEL_DATABASE_URL or pass --url", file=sys.stderr)
        return 2
    done = asyncio.run(import_data_dir(args.data_dir, url, settings.exemplar_capacity, settings.exemplar_per_product))
    print(
        f"imported from {args.data_dir}: {done.placeholders} placeholders, {done.exemplars} exemplars, "
        f"{done.search_images} search images"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
