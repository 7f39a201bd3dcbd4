"""gateway.clients.database against real and missing servers: a server that is not there, or never answers, is
StoreUnavailable within the connect timeout (never a hang); the breaker then refuses at once for its cooldown and
lets a probe through after it; a statement held by a lock gives up after `timeout_s`; a dropped connection is
replaced; a schema below head is refused or migrated; the service resumes once the database is there."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from gateway.clients.breaker import State
from gateway.clients.database import SchemaCheckBusy, StoreUnavailable
from gateway.stores import migrate
from gateway.stores.interfaces import LibraryEntry
from gateway.stores.placeholders import PlaceholderLibrary
from tests.database import TEMPLATE, database_url, fresh_database, server
from tests.gateway.stores.support import connect, opened, silent_server
from tools.launcher import free_port

pytestmark = pytest.mark.anyio


async def unavailable_within(seconds: float, call) -> tuple[StoreUnavailable, float]:
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as error:
        await call()
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    return error.value, elapsed


async def test_a_socket_folder_with_no_server_is_unavailable_at_once(tmp_path):
    async with opened(f"postgresql://postgres@/imgsel?host={tmp_path}") as database:
        error, _ = await unavailable_within(1.5, database.check)
        assert "OperationalError" in str(error)
        await unavailable_within(0.2, PlaceholderLibrary(database).entries)  # the breaker: at once


async def test_a_closed_port_is_unavailable_at_once():
    async with opened(f"postgresql://postgres@127.0.0.1:{free_port()}/imgsel") as database:
        error, _ = await unavailable_within(1.5, PlaceholderLibrary(database).entries)
        assert "refused" in str(error).lower()


async def test_a_server_that_never_answers_gives_up_after_the_connect_timeout():
    """libpq's connect_timeout (whole seconds, at least 2): no hang. A call that arrives during that first schema
    check is answered at once and does not count against the server."""
    with silent_server() as port:
        async with opened(f"postgresql://postgres@127.0.0.1:{port}/imgsel", timeout_s=1.0) as database:
            first = asyncio.create_task(unavailable_within(5.0, database.check))
            await asyncio.sleep(0.2)
            with pytest.raises(SchemaCheckBusy):
                await database.check()
            assert database.breaker.state is State.CLOSED
            error, elapsed = await first
            assert elapsed >= 1.5 and "timeout" in str(error).lower()
            assert database.breaker.state is State.OPEN


async def test_the_breaker_refuses_at_once_during_the_cooldown_then_lets_a_probe_through():
    async with opened(f"postgresql://postgres@127.0.0.1:{free_port()}/imgsel", breaker_cooldown_s=0.5) as database:
        first, _ = await unavailable_within(1.5, database.check)
        refused, _ = await unavailable_within(0.2, database.check)
        assert str(refused).startswith("database unavailable for ") and "refused" in str(refused).lower()
        assert database.breaker.status().retry_in_s > 0
        await asyncio.sleep(0.6)
        probe, _ = await unavailable_within(1.5, database.check)  # past the cooldown: the server is tried again
        assert not str(probe).startswith("database unavailable for ")
        assert database.breaker.state is State.OPEN


async def test_service_resumes_once_the_database_is_there():
    name = f"imgsel_later_{free_port()}"
    url = database_url(server().url, name)
    async with opened(url, breaker_cooldown_s=0.2) as database:
        library = PlaceholderLibrary(database)
        error, _ = await unavailable_within(1.5, library.entries)
        assert "does not exist" in str(error)
        with psycopg.connect(server().url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        await asyncio.sleep(0.3)
        await library.add([LibraryEntry("back", 1, 1, 1, None)])
        assert [e.id for e in await library.entries()] == ["back"]
        assert database.breaker.state is State.CLOSED


async def test_a_schema_below_head_is_refused_or_migrated():
    url = fresh_database(migrated=False)
    async with opened(url, migrate_schema=False) as database:
        error, _ = await unavailable_within(2.0, database.check)
        assert "schema at base" in str(error) and "python -m gateway.stores.migrate upgrade" in str(error)
    async with opened(url, migrate_schema=True) as database:
        await database.check()
        assert await PlaceholderLibrary(database).entries() == []
    assert migrate.current_revision(url) == migrate.head_revision()


async def test_a_statement_held_by_a_lock_gives_up_after_timeout_s(database):
    async with opened(database.url, timeout_s=1.0) as impatient:
        library = PlaceholderLibrary(impatient)
        await library.entries()
        with psycopg.connect(database.url) as holder:
            holder.execute("LOCK TABLE placeholders IN ACCESS EXCLUSIVE MODE")  # held until this transaction ends
            error, elapsed = await unavailable_within(3.0, library.entries)
            assert elapsed >= 0.9 and "timeout" in str(error)  # statement_timeout = lock_timeout = timeout_s
            holder.rollback()
        await asyncio.sleep(impatient.breaker.cooldown_s)
        assert await library.entries() == []  # the lock gone, the probe succeeds


async def test_a_connection_the_server_dropped_is_replaced_not_used(database):
    library = PlaceholderLibrary(database)
    await library.add([LibraryEntry("a", 1, 1, 1, None)])
    with psycopg.connect(database.url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'imgsel-gateway'"
        ).fetchone()[0]
    assert dropped >= 1
    assert [e.id for e in await library.entries()] == ["a"]
    assert database.breaker.state is State.CLOSED


async def test_an_error_of_the_callers_own_leaves_the_breaker_closed(database):
    with pytest.raises(psycopg.errors.UndefinedTable):
        async with database.transaction() as connection:
            await connection.execute("SELECT * FROM no_such_table")
    assert database.breaker.state is State.CLOSED
    await database.check()


async def test_a_database_at_an_unknown_revision_is_unavailable_not_an_internal_error():
    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    async with opened(url, migrate_schema=True) as database:
        error, _ = await unavailable_within(5.0, database.check)
        assert "9999" in str(error)


async def test_close_during_the_first_schema_check_leaves_no_open_pool():
    database = connect(fresh_database())
    check = asyncio.create_task(database.check())
    await asyncio.sleep(0.01)  # the check is under way in its thread
    await database.close()
    with pytest.raises(StoreUnavailable, match="closed"):  # the check that was under way fails, opening nothing
        await check
    try:
        assert database.pool.closed
    finally:
        await database.pool.close()
