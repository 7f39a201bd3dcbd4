"""A real PostgreSQL for the tests: the embedded server (tools.database), started once per test process in a
temporary folder and stopped at exit, with a template database migrated to head, so each test gets a fresh database
in a fraction of a second (`CREATE DATABASE ... TEMPLATE`)."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from pathlib import Path

import psycopg

from gateway.stores import migrate
from tools.database import EmbeddedDatabase

TEMPLATE = "imgsel_template"
_server: EmbeddedDatabase | None = None
_names = itertools.count()


def server() -> EmbeddedDatabase:
    """The test process's embedded server (started on first use)."""
    global _server
    if _server is None:
        folder = Path(tempfile.mkdtemp(prefix="imgsel-test-pg-"))
        database = EmbeddedDatabase(folder)
        database.start()
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # runs after the stop (last registered, first run)
        atexit.register(database.stop)
        with psycopg.connect(database.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {TEMPLATE}")
        migrate.upgrade(database_url(database.url, TEMPLATE))
        _server = database
    return _server


def database_url(server_url: str, name: str) -> str:
    """The server's URL (`postgresql://user:@/postgres?host=...`) with another database name."""
    head, _, query = server_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


def fresh_database(migrated: bool = True) -> str:
    """URL of a new, empty database: at schema head (a copy of the template), or with no schema at all."""
    url = server().url
    name = f"imgsel_test_{next(_names)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {TEMPLATE}" if migrated else ""))
    return database_url(url, name)
