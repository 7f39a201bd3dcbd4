"""Shared by the store, service, client and API tests: a Database with the gateway's settings on a URL (each test
gets a fresh database of the test process's embedded server, tests.database), unit vectors of the embedding width, and
a server that never answers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import numpy as np

from contract.tensors import EMBEDDING_DIM
from gateway.clients.database import Database


def connect(
    url: str, timeout_s: float = 10.0, migrate_schema: bool = False, breaker_cooldown_s: float = 2.0, pool_size: int = 4
) -> Database:
    """A Database as the gateway builds one (tests.database's copies are at head already: no migration). The timeout
    is generous so a loaded test machine does not turn a slow pool into StoreUnavailable; timeout tests pass theirs."""
    return Database(url, pool_size, timeout_s, migrate_schema, breaker_cooldown_s)


@asynccontextmanager
async def opened(url: str, **settings) -> AsyncIterator[Database]:
    """A second gateway's view of the same database: its own pool, its own caches."""
    database = connect(url, **settings)
    try:
        yield database
    finally:
        await database.close()


def unit_vectors(n: int, seed: int, dim: int = EMBEDDING_DIM) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server, a black-holed proxy)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]
