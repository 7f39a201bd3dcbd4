"""Async access to the state store (PostgreSQL with pgvector): a psycopg 3 connection pool, each store call one
statement or one transaction, schema at head before the first call, and a circuit breaker.

Connections are in autocommit mode, so a store call that is one statement (the hot path's reads) costs one round
trip: `statement()`; `transaction()` opens an explicit transaction around a block, `transaction(pipeline=True)` sends
the block's statements, BEGIN and COMMIT without waiting for each result (a write of several statements in about one
round trip; nothing read in the block may be awaited before it ends).

A database that is down, too slow or not migrated raises StoreUnavailable (the API answers 503 with Retry-After):
connections and statements are bounded by `timeout_s`, and once a call has failed the breaker refuses at once for a
cooldown, then lets one probe through (gateway.clients.breaker), so requests never queue behind a dead server. The
pool starts without waiting for the server (the gateway starts, /readyz says why it is not ready) and reconnects in
the background; the schema check (and, with `migrate`, the upgrade) is retried until it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import alembic.util.exc
import psycopg
import sqlalchemy.exc
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from gateway.clients.breaker import CircuitBreaker
from gateway.stores import migrate
from gateway.timing import DATABASE, phase

log = logging.getLogger("imgsel.gateway")


class StoreUnavailable(RuntimeError):
    pass


class SchemaCheckBusy(StoreUnavailable):
    """Another call of this process is checking (or migrating) the schema: says nothing about the server's health."""


class Database:
    def __init__(self, url: str, pool_size: int, timeout_s: float, migrate_schema: bool, breaker_cooldown_s: float):
        self.url = url
        self.timeout_s = timeout_s
        self.migrate_schema = migrate_schema
        self.breaker = CircuitBreaker(breaker_cooldown_s)
        self._schema_ok = False
        self._closed = False
        self._schema_check: asyncio.Task | None = None
        statement_ms = int(timeout_s * 1000)
        self.pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout_s,
            check=AsyncConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
            configure=register_vector_async,
            kwargs={
                "connect_timeout": max(2, int(timeout_s)),  # libpq: whole seconds, at least 2
                "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
                "application_name": "imgsel-gateway",
                "autocommit": True,  # transaction() opens its own; statement() needs none
            },
        )

    async def close(self) -> None:
        """Closes the pool; a schema check still running finds the Database closed and opens nothing."""
        self._closed = True
        await self.pool.close()

    async def prepare(self) -> None:
        """At start-up: the schema check (and upgrade) once; a database that is not there yet is only logged, the
        first store call or /readyz tries again."""
        try:
            async with self.transaction():
                pass
        except StoreUnavailable:
            pass

    async def _ensure_schema(self) -> None:
        """Once per process: the schema at head (upgraded here when `migrate_schema`), before any store call. Calls
        that arrive while another one checks get StoreUnavailable at once rather than queueing behind it. The check
        runs as a task of its own that a cancelled caller does not stop (a request whose read was started beside its
        model call is cancelled when that call fails): a migration thread is never left running unseen while a second
        check starts."""
        if self._schema_ok:
            return
        if self._schema_check is not None and not self._schema_check.done():
            raise SchemaCheckBusy("database schema check in progress")
        self._schema_check = asyncio.ensure_future(self._check_schema())
        # Its outcome is read even when every caller went away (no "exception never retrieved").
        self._schema_check.add_done_callback(lambda task: task.cancelled() or task.exception())
        await asyncio.shield(self._schema_check)

    async def _check_schema(self) -> None:
        try:
            if self.migrate_schema:
                await asyncio.to_thread(migrate.upgrade, self.url, connect_timeout_s=self.timeout_s)
            current = await asyncio.to_thread(migrate.current_revision, self.url, self.timeout_s)
        except sqlalchemy.exc.DBAPIError as error:  # SQLAlchemy's wrapper of the driver's error
            raise StoreUnavailable(_describe(error.orig or error)) from error
        except alembic.util.exc.CommandError as error:  # e.g. a revision this gateway does not know (newer)
            raise StoreUnavailable(f"database schema: {error}; this gateway needs {migrate.head_revision()}") from error
        head = migrate.head_revision()
        if current != head:
            raise StoreUnavailable(
                f"database schema at {current or 'base'}, this gateway needs {head}: "
                "run `python -m gateway.stores.migrate upgrade`"
            )
        if self._closed:
            raise StoreUnavailable("database client closed")
        # Opened only now: each new connection registers the pgvector types, which the schema creates.
        await self.pool.open(wait=False)
        self._schema_ok = True

    @asynccontextmanager
    async def transaction(self, pipeline: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        """One transaction: committed when the block ends, rolled back on any error. `pipeline`: the block's
        statements are sent without waiting for each other's results (see the module docstring)."""
        async with self._connection() as connection:
            if pipeline:
                async with connection.pipeline(), connection.transaction():
                    yield connection
            else:
                async with connection.transaction():
                    yield connection

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection for ONE statement, which is then its own transaction (no BEGIN / COMMIT round trips)."""
        async with self._connection() as connection:
            yield connection

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled (autocommit) connection. Connection, server and timeout failures become StoreUnavailable; other
        errors (bugs, constraint violations) propagate as they are."""
        with phase(DATABASE):  # the request's time on the state store (Server-Timing, gateway.timing)
            if not self.breaker.allow():
                status = self.breaker.status()
                raise StoreUnavailable(f"database unavailable for {status.down_for_s:.0f} s: {status.last_error}")
            try:
                await self._ensure_schema()
                async with self.pool.connection() as connection:
                    yield connection
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as error:
                # OperationalError covers refused/dropped connections, the pool's timeout and statement timeouts.
                self._failed(error)
                raise StoreUnavailable(_describe(error)) from error
            except SchemaCheckBusy:
                self.breaker.record_abandoned()  # no verdict on the server: a probe's slot is freed
                raise
            except StoreUnavailable as error:  # from the schema check: unreachable, or not at head
                self._failed(error)
                raise
            except asyncio.CancelledError:
                self.breaker.record_abandoned()
                raise
            except BaseException:
                self.breaker.record_success()  # the server answered; the error is the caller's
                raise
            else:
                self.breaker.record_success()

    def _failed(self, error: BaseException) -> None:
        if self.breaker.status().last_error == "":
            log.warning("state store unavailable: %s", _describe(error))
        self.breaker.record_failure(_describe(error))

    async def check(self) -> None:
        """Raises StoreUnavailable unless the server answers and the schema is at head (for /readyz)."""
        async with self.statement() as connection:
            await connection.execute("SELECT 1")


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
