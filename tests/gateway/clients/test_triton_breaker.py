"""gateway.clients.triton with its circuit breaker: server faults open it, an open breaker answers at once with no
gRPC attempt, the half-open probe closes it again; a real channel to a closed port is refused and trips it."""

from __future__ import annotations

import asyncio

import pytest
from tritonclient.utils import InferenceServerException

from gateway.clients.breaker import CircuitBreaker, State
from gateway.clients.triton import TritonAnalyzer, TritonUnavailable, channel_args, is_server_fault
from tools.launcher import free_port

UNAVAILABLE = InferenceServerException("failed to connect to all addresses", status="StatusCode.UNAVAILABLE")
DEAD_STUB = InferenceServerException(
    "in ensemble 'analyze', Stub process 'preprocess_0_0' is not healthy.", status="StatusCode.INTERNAL"
)
BAD_INPUT = InferenceServerException("unexpected shape for input 'IMAGE_BYTES'", status="StatusCode.INVALID_ARGUMENT")
INDEX = [{"name": "analyze", "state": "READY"}, {"name": "preprocess", "state": "READY"}]


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """Stands in for tritonclient's aio client: answers from a script and counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0
        self.outcome: Exception | None = None

    async def _answer(self, value):
        self.calls += 1
        if self.outcome is not None:
            raise self.outcome
        return value

    def infer(self, model, inputs, outputs=None, client_timeout=None):
        return self._answer({"model": model})

    def get_model_repository_index(self, as_json=False):
        return self._answer({"models": INDEX})

    async def close(self):
        pass


@pytest.fixture
def analyzer():
    async def make():
        return TritonAnalyzer(f"127.0.0.1:{free_port()}", timeout_s=1.0, breaker_cooldown_s=2.0)

    triton = asyncio.run(make())
    triton.client = FakeClient()
    triton.breaker = CircuitBreaker(2.0, clock=FakeClock())
    return triton


def run(coroutine):
    return asyncio.run(coroutine)


def test_server_fault_classification():
    assert is_server_fault(UNAVAILABLE)
    assert is_server_fault(DEAD_STUB)
    assert not is_server_fault(BAD_INPUT)


def test_channel_reconnects_within_a_second():
    options = dict(channel_args())
    assert options["grpc.max_reconnect_backoff_ms"] <= 1000
    assert options["grpc.initial_reconnect_backoff_ms"] <= options["grpc.max_reconnect_backoff_ms"]
    assert options["grpc.max_receive_message_length"] > 512 * 1024 * 1024  # large analyze responses still fit


def test_calls_pass_while_closed(analyzer):
    assert run(analyzer._infer("analyze", [], [])) == {"model": "analyze"}
    assert run(analyzer.model_states()) == {"analyze": "READY", "preprocess": "READY"}
    assert analyzer.client.calls == 2


@pytest.mark.parametrize("fault", [UNAVAILABLE, DEAD_STUB])
def test_a_server_fault_opens_the_breaker_and_later_calls_never_reach_the_server(analyzer, fault):
    analyzer.client.outcome = fault
    with pytest.raises(TritonUnavailable):
        run(analyzer._infer("analyze", [], []))
    assert analyzer.breaker.state is State.OPEN
    analyzer.client.outcome = None  # even a server that is back is not asked before the cooldown ends
    for _ in range(3):
        with pytest.raises(TritonUnavailable, match="circuit open"):
            run(analyzer._infer("analyze", [], []))
        with pytest.raises(TritonUnavailable):
            run(analyzer.model_states())
    assert analyzer.client.calls == 1


def test_a_request_error_does_not_open_it(analyzer):
    analyzer.client.outcome = BAD_INPUT
    with pytest.raises(InferenceServerException):
        run(analyzer._infer("analyze", [], []))
    assert analyzer.breaker.state is State.CLOSED


def test_a_timeout_opens_it(analyzer):
    async def never(*_args, **_kwargs):
        await asyncio.sleep(3600)

    analyzer.client.infer = never
    with pytest.raises(TritonUnavailable, match="did not answer"):
        run(analyzer._guarded("analyze", never(), 0.01))
    assert analyzer.breaker.state is State.OPEN


def test_after_the_cooldown_one_probe_closes_it(analyzer):
    analyzer.client.outcome = UNAVAILABLE
    with pytest.raises(TritonUnavailable):
        run(analyzer.model_states())
    analyzer.client.outcome = None
    analyzer.breaker.clock.now += 2.0
    assert run(analyzer.model_states())["analyze"] == "READY"
    assert analyzer.breaker.state is State.CLOSED
    assert run(analyzer._infer("analyze", [], [])) == {"model": "analyze"}


def test_a_cancelled_probe_frees_the_slot(analyzer):
    analyzer.client.outcome = UNAVAILABLE
    with pytest.raises(TritonUnavailable):
        run(analyzer._infer("analyze", [], []))
    analyzer.breaker.clock.now += 2.0

    async def cancelled_probe():
        task = asyncio.ensure_future(analyzer._guarded("analyze", asyncio.sleep(3600), 10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancelled_probe())
    assert analyzer.breaker.state is State.OPEN
    assert analyzer.breaker.allow()  # the next caller probes


def test_a_real_channel_to_a_closed_port_trips_the_breaker():
    async def scenario():
        triton = TritonAnalyzer(f"127.0.0.1:{free_port()}", timeout_s=5.0, breaker_cooldown_s=60.0)
        try:
            with pytest.raises(TritonUnavailable):
                await triton.model_states()
            assert triton.breaker.state is State.OPEN
            with pytest.raises(TritonUnavailable, match="circuit open"):
                await triton.model_states()
        finally:
            await triton.close()

    run(scenario())
