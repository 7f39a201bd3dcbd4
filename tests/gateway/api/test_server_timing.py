"""Every response says where its time went: `Server-Timing` (total, triton, fetch, database, receive, hashing,
decisions, gateway, overhead in ms) and the imgsel_request_phase_seconds histogram (gateway.api.request_context,
gateway.timing). A served /v1/select here runs the whole path on the real app, with a stand-in for tritonclient's
gRPC client answering the analyze ensemble."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contract.tensors import ANALYZE_OUTPUTS, EMBEDDING, ORIG_SIZE, QUALITY_SCORES, THUMB, VALID
from gateway.api.request_context import RequestContextMiddleware
from gateway.app import create_app
from tests.gateway.api.support import select_body, settings
from tests.gateway.services.fakes import jpeg_b64, unit
from tests.helpers import product_photo

FIELDS = ["total", "triton", "fetch", "database", "receive", "hashing", "decisions", "gateway", "overhead"]
IMAGES = 3


class AnalyzeResult:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def as_numpy(self, name: str) -> np.ndarray:
        return self.arrays[name]


class FakeGrpcClient:
    """Answers the analyze ensemble (distinct thumbnails and embeddings per image, sharp, no placeholder) after a
    millisecond, and lists it READY with no head outputs beyond ANALYZE_OUTPUTS (no category or type head)."""

    async def infer(self, model, inputs, outputs=None, client_timeout=None):
        await asyncio.sleep(0.001)  # a real wait, so the triton phase cannot round to zero
        n = inputs[0].shape()[0]
        return AnalyzeResult(
            {
                VALID.name: np.ones((n, 1), bool),
                ORIG_SIZE.name: np.full((n, 2), 1000, np.int32),
                THUMB.name: np.stack([np.asarray(product_photo(128, seed=k)) for k in range(n)]),
                EMBEDDING.name: np.stack([unit(k) for k in range(n)]),
                QUALITY_SCORES.name: np.full((n, 3), 0.05, np.float32),
            }
        )

    async def get_model_repository_index(self, as_json=False):
        return {"models": [{"name": "analyze", "state": "READY"}]}

    async def get_model_metadata(self, model, as_json=False):
        return {"name": model, "outputs": [{"name": tensor.name} for tensor in ANALYZE_OUTPUTS]}

    async def get_model_config(self, model, as_json=False):  # the cpu profile's one model, two instances
        return {"config": {"name": model, "backend": "python", "instance_group": [{"kind": "KIND_CPU", "count": 2}]}}

    async def close(self):
        pass


def server_timing(header: str) -> dict[str, float]:
    parts = [part.strip().split(";dur=") for part in header.split(",")]
    return {name: float(ms) for name, ms in parts}


@pytest.fixture(scope="module")
def served():
    with TestClient(create_app(settings())) as client:
        client.app.state.triton.client = FakeGrpcClient()
        yield client


def test_a_served_select_says_where_its_time_went(served):
    images = [{"id": str(k), "data": jpeg_b64(k)} for k in range(IMAGES)]
    response = served.post("/v1/select", json=select_body(*images, category="apparel"))
    assert response.status_code == 200, response.text
    assert [image["status"] for image in response.json()["images"]].count("error") == 0

    timing = server_timing(response.headers["server-timing"])
    assert list(timing) == FIELDS
    assert all(ms >= 0 for ms in timing.values())
    assert timing["triton"] > 0 and timing["fetch"] > 0
    assert timing["database"] > 0  # the placeholder library and the category's exemplars are in the state store
    # Each part is within the total, and the gateway's share is what the phases leave of it (rounding: 0.01 ms each).
    assert all(timing[name] <= timing["total"] + 0.01 for name in FIELDS)
    waited = timing["triton"] + timing["fetch"] + timing["database"]
    assert timing["gateway"] >= timing["total"] - waited - 0.05
    # Hashing the thumbnails is the gateway's own work: shown apart, and inside the overhead (not always inside
    # `gateway`: the state store's read may be in flight meanwhile).
    assert 0 < timing["hashing"] <= timing["overhead"] + 0.01
    # So are the decisions (de-duplication and selection), which no outside call overlaps: inside `gateway` too.
    assert 0 < timing["decisions"] <= timing["gateway"] + 0.01
    # The overhead is the gateway's share plus whatever store time no Triton call or fetch hid.
    assert timing["gateway"] - 0.01 <= timing["overhead"] <= timing["gateway"] + timing["database"] + 0.02

    metrics = served.get("/metrics").text
    for phase in FIELDS[1:]:
        assert f'imgsel_request_phase_seconds_count{{phase="{phase}",route="/v1/select"}}' in metrics


def test_answers_without_a_route_carry_it_too(served):
    for response in (served.get("/healthz"), served.get("/nowhere"), served.post("/v1/select", json={})):
        assert list(server_timing(response.headers["server-timing"])) == FIELDS


def test_receive_counts_the_wait_for_the_body_and_nothing_after_it():
    # A client that sends its body in two chunks 20 ms apart; the app then also listens for a disconnect, which
    # arrives 50 ms later and is no part of receiving the request.
    messages = [
        (0.0, {"type": "http.request", "body": b'{"a":', "more_body": True}),
        (0.02, {"type": "http.request", "body": b"1}", "more_body": False}),
        (0.05, {"type": "http.disconnect"}),
    ]

    async def receive():
        delay, message = messages.pop(0)
        await asyncio.sleep(delay)
        return message

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await receive()  # the disconnect listener
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [], "query_string": b""}
    asyncio.run(RequestContextMiddleware(app, [])(scope, receive, send))
    timing = server_timing(dict(sent[0]["headers"])[b"server-timing"].decode())
    assert 20 <= timing["receive"] < 50 <= timing["total"]
    assert timing["overhead"] >= timing["receive"]  # the client's upload is not Triton or fetching
