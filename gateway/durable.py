"""The one way the gateway opens its SQLite state files (placeholder library, vote exemplars, search index)."""

from __future__ import annotations

import sqlite3
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
