"""The one way the gateway opens its SQLite state files (placeholder library, vote exemplars, search index)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """Autocommit connection usable from worker threads (callers serialise with their own lock), WAL journal and
    synchronous=FULL: an acknowledged transaction survives kill -9 and power loss; `schema` is applied idempotently."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an `open_durable` connection: committed whole, or rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
