"""Each kind of outside call is timed at its one place (gateway.timing): every Triton call in
TritonAnalyzer._guarded, input fetching in Fetcher.fetch_all, every store call in Database._connection (under
statement() and transaction()). A clock that ticks once per reading makes the counts exact: a phase entered and left
once spans one tick."""

from __future__ import annotations

import itertools

import httpx
import pytest

from gateway.clients.fetch import Fetcher
from gateway.clients.triton import TritonAnalyzer, TritonUnavailable
from gateway.schemas import ImageIn
from gateway.timing import DATABASE, FETCH, TRITON, end_request, start_request
from tests.gateway.api.support import JPEG_B64
from tests.gateway.clients.test_triton_breaker import UNAVAILABLE, FakeClient
from tools.launcher import free_port

pytestmark = pytest.mark.anyio


class Ticks:
    """A clock that moves one second every time it is read."""

    def __init__(self) -> None:
        self.readings = itertools.count()

    def __call__(self) -> float:
        return float(next(self.readings))


async def timed(work):
    timer, token = start_request(Ticks())
    try:
        await work()
    finally:
        end_request(token)
    return timer.snapshot()


def analyzer() -> TritonAnalyzer:
    triton = TritonAnalyzer(f"127.0.0.1:{free_port()}", timeout_s=1.0, breaker_cooldown_s=60.0)
    triton.client = FakeClient()
    return triton


async def test_every_triton_call_is_timed_and_a_refused_one_is_not():
    triton = analyzer()

    async def calls():
        await triton.model_states()
        await triton.model_states()
        triton.client.outcome = UNAVAILABLE  # this call fails and opens the breaker
        with pytest.raises(TritonUnavailable):
            await triton.model_states()
        with pytest.raises(TritonUnavailable):  # refused by the open breaker: no call, no Triton time
            await triton.model_states()

    times = await timed(calls)
    assert triton.client.calls == 3
    assert times.phases[TRITON] == 3.0  # one tick per call that reached the client
    assert times.phases[FETCH] == times.phases[DATABASE] == 0.0


async def test_fetching_a_products_images_is_one_fetch_phase():
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(404))) as client:
        fetcher = Fetcher(client, timeout_s=2, max_bytes=1 << 20, concurrency=4, max_pixels=10**8, max_side=10**4)
        images = [ImageIn(id=str(k), data=JPEG_B64) for k in range(4)]
        times = await timed(lambda: fetcher.fetch_all(images))
    assert times.phases[FETCH] == 1.0  # four images fetched together: one interval
    assert times.phases[TRITON] == 0.0


async def test_every_store_transaction_is_timed(database):
    async def transactions():
        for _ in range(2):
            async with database.transaction() as connection:
                await connection.execute("SELECT 1")

    times = await timed(transactions)
    assert times.phases[DATABASE] == 2.0
