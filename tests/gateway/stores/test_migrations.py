"""Schema migrations on a real server: every revision up and down one step at a time, upgrade idempotent, `base`
drops what imgsel created (and only that), concurrent upgrades serialise on the advisory lock, the command line, and
the whole state store on PostgreSQL 16 (the oldest major version the wheel ships) as on 18."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from alembic.script import ScriptDirectory

from gateway.decisions.analysis import LibraryMatch
from gateway.stores import migrate
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.interfaces import LibraryEntry
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex
from tests.database import fresh_database
from tests.gateway.stores.support import opened, unit_vectors
from tools.database import EmbeddedDatabase

ROOT = Path(__file__).resolve().parents[3]
TABLES = {"placeholders", "state_versions", "exemplars", "search_items", "search_partitions"}


def schema(url: str) -> dict:
    """What imgsel's migrations create, as the catalog sees it."""
    with psycopg.connect(url) as connection:

        def names(query: str) -> set[str]:
            return {row[0] for row in connection.execute(query).fetchall()}

        return {
            "tables": names(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
            )
            - {"alembic_version"},
            "partitioned": names("SELECT relname FROM pg_class WHERE relkind = 'p'"),
            "triggers": names("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"),
            "functions": names("SELECT proname FROM pg_proc WHERE proname LIKE 'imgsel%'"),
            "hnsw": names(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'"
            ),
            "extensions": names("SELECT extname FROM pg_extension"),
            "versions": dict(connection.execute("SELECT name, version FROM state_versions").fetchall())
            if "state_versions" in names("SELECT relname FROM pg_class WHERE relname = 'state_versions'")
            else None,
        }


def assert_at_head(url: str) -> None:
    found = schema(url)
    assert found["tables"] == TABLES
    assert found["partitioned"] == {"search_items"}
    assert found["triggers"] == {"placeholders_changed"}
    assert found["functions"] == {"imgsel_placeholders_changed"}
    assert found["hnsw"] == {"search_items_embedding"}
    assert "vector" in found["extensions"]
    assert found["versions"] == {"placeholders": 0}
    assert migrate.current_revision(url) == migrate.head_revision()


def assert_at_base(url: str) -> None:
    found = schema(url)
    assert found["tables"] == set() and found["triggers"] == set() and found["functions"] == set()
    assert found["hnsw"] == set() and found["versions"] is None
    assert "vector" in found["extensions"]  # kept: other schemas of the database may use it
    assert migrate.current_revision(url) is None


def test_upgrade_head_is_idempotent_and_downgrade_base_removes_everything():
    url = fresh_database(migrated=False)
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert_at_head(url)
    migrate.upgrade(url)  # again: nothing to do
    assert_at_head(url)
    migrate.downgrade(url, "base")
    assert_at_base(url)
    migrate.upgrade(url, "head")
    assert_at_head(url)


def test_every_revision_goes_up_and_down_one_step_at_a_time():
    url = fresh_database(migrated=False)
    revisions = [script.revision for script in ScriptDirectory(str(migrate.MIGRATIONS)).walk_revisions("base", "heads")]
    revisions.reverse()  # oldest first
    assert revisions and revisions[-1] == migrate.head_revision()
    for previous, revision in zip([None, *revisions], revisions):
        migrate.upgrade(url, revision)
        assert migrate.current_revision(url) == revision
        migrate.downgrade(url, previous or "base")
        assert migrate.current_revision(url) == previous
        migrate.upgrade(url, revision)
    assert_at_head(url)


def test_replicas_upgrading_at_once_all_succeed():
    """Three gateways starting together on an empty database (processes: Alembic's context is per process): all
    three are held at the advisory lock, then migrate one after the other; the later ones find the schema at head."""
    url = fresh_database(migrated=False)
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrate.MIGRATION_LOCK,))
        replicas = [
            subprocess.Popen(
                [sys.executable, "-m", "gateway.stores.migrate", "--url", url, "upgrade"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=cli_environment(),
            )
            for _ in range(3)
        ]
        deadline = time.monotonic() + 60
        while waiting_for_the_lock(holder) < 3:
            assert time.monotonic() < deadline and all(r.poll() is None for r in replicas), "replicas never queued"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrate.MIGRATION_LOCK,))
    for replica in replicas:
        _, stderr = replica.communicate(timeout=60)
        assert replica.returncode == 0, stderr
    assert_at_head(url)


def waiting_for_the_lock(connection: psycopg.Connection) -> int:
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return connection.execute(query).fetchone()[0]


def cli_environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IMGSEL_DATABASE_URL", None)
    return env


def test_command_line_upgrade_current_and_downgrade():
    url = fresh_database(migrated=False)
    env = cli_environment()

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "gateway.stores.migrate", "--url", url, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    head = migrate.head_revision()
    assert cli("current") == f"schema revision: base (head: {head})"
    assert cli("upgrade") == f"schema revision: {head} (head: {head})"
    assert cli("current") == f"schema revision: {head} (head: {head})"
    assert_at_head(url)
    assert cli("downgrade", "base") == f"schema revision: base (head: {head})"
    assert_at_base(url)
    missing = subprocess.run(
        [sys.executable, "-m", "gateway.stores.migrate", "current"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert missing.returncode == 2 and "IMGSEL_DATABASE_URL" in missing.stderr


def test_postgresql_16_runs_the_migrations_and_the_stores(tmp_path):
    """The oldest major version the pinned wheel ships: up, down, up, then each store once."""
    server = EmbeddedDatabase(tmp_path, version=16)
    url = server.start()
    try:
        with psycopg.connect(url) as connection:
            assert connection.info.server_version // 10_000 == 16
        migrate.upgrade(url)
        assert_at_head(url)
        migrate.downgrade(url, "base")
        assert_at_base(url)
        migrate.upgrade(url)
        asyncio.run(use_every_store(url))
    finally:
        server.stop()


async def use_every_store(url: str) -> None:
    v = unit_vectors(3, 12)
    async with opened(url) as database:
        library = PlaceholderLibrary(database)
        await library.add([LibraryEntry("p", 0xF000_0000_0000_0001, 1, 1, None)])
        assert await library.match([0xF000_0000_0000_0001], 0) == [LibraryMatch("p", 0)]
        exemplars = ExemplarStore(database, capacity=2)
        for p in range(3):
            await exemplars.add("apparel", f"p{p}", [("hero", v[p])])
        assert await exemplars.categories() == {"apparel": 2}
        index = SearchIndex(database, exact_max=1)
        await index.add([(f"p{i}", f"i{i}", "fruit", v[i]) for i in range(3)])
        assert [h.image_id for h in await index.search(v[1], ["fruit"], k=1)] == ["i1"]
        assert np.allclose((await exemplars.recent("apparel", 1))[0], v[2], atol=2e-3)


def test_migrations_leave_other_applications_tables_alone():
    """A database that already holds another application's table migrates up and down around it."""
    url = fresh_database(migrated=False)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE other_app (id int PRIMARY KEY)")
        connection.execute("INSERT INTO other_app VALUES (1)")
    migrate.upgrade(url)
    assert schema(url)["tables"] == TABLES | {"other_app"}
    migrate.downgrade(url, "base")
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT id FROM other_app").fetchall() == [(1,)]
