"""Async tests of the gateway (`pytest.mark.anyio`, anyio's pytest plugin) run on asyncio, the loop psycopg's pool
needs; `database` is a Database on a fresh PostgreSQL database at schema head, closed after the test."""

from __future__ import annotations

import pytest

from tests.database import fresh_database
from tests.gateway.stores.support import connect


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(anyio_backend):
    db = connect(fresh_database())
    try:
        yield db
    finally:
        await db.close()
