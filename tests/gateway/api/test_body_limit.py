"""IMGSEL_MAX_BODY_BYTES (gateway.api.body_limit): 413 naming the limit before the body is parsed, for a declared
Content-Length and for a chunked body, through TestClient, a real uvicorn server, and the bare middleware fed an
endless body."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from gateway.api.body_limit import BodyLimitMiddleware
from gateway.app import create_app
from tests.gateway.api.support import settings
from tools.launcher import free_port

LIMIT = 4096


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == LIMIT and "IMGSEL_MAX_BODY_BYTES" in response.json()["message"]
    assert response.headers["x-request-id"]


def chunks(total: int, size: int = 512):
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.fixture(scope="module")
def limited():
    with TestClient(create_app(settings(max_body_bytes=LIMIT))) as client:
        yield client


def test_content_length_over_the_limit_is_413_not_a_parse_error(limited):
    # Not JSON at all: a 422 would mean it was parsed.
    assert_413(limited.post("/v1/select", content=b"{" * (LIMIT + 1), headers={"content-type": "application/json"}))


def test_a_body_at_the_limit_is_parsed(limited):
    response = limited.post("/v1/select", content=b"{" * LIMIT, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_chunked_over_the_limit_is_413(limited):
    assert_413(limited.post("/v1/select", content=chunks(LIMIT * 3), headers={"content-type": "application/json"}))


def test_the_413_is_counted(limited):
    limited.post("/v1/dedup", content=b"x" * (LIMIT + 1))
    assert 'imgsel_requests_total{code="413",route="/v1/dedup"}' in limited.get("/metrics").text


def test_an_endless_body_is_refused_one_chunk_past_the_limit():
    """Bare middleware, an app that reads everything (as a JSON parser would), a body that never ends."""
    reads = 0
    sent: list[dict] = []

    async def endless_receive():
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message):
        sent.append(message)

    async def read_everything(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    scope = {"type": "http", "method": "POST", "path": "/v1/select", "headers": [(b"transfer-encoding", b"chunked")]}
    asyncio.run(BodyLimitMiddleware(read_everything, max_bytes=10_000)(scope, endless_receive, send))
    assert reads == 11  # 11,000 bytes: the first count past 10,000
    assert sent[0]["status"] == 413


def test_a_declared_length_is_refused_before_any_read():
    async def never_called(*_args):
        raise AssertionError("the app must not run")

    async def receive():
        raise AssertionError("nothing may be read")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/select", "headers": [(b"content-length", b"10001")]}
    asyncio.run(BodyLimitMiddleware(never_called, max_bytes=10_000)(scope, receive, send))
    assert sent[0]["status"] == 413


@pytest.fixture(scope="module")
def served():
    """The app under a real uvicorn server on loopback (TestClient buffers bodies; a socket does not)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings(max_body_bytes=LIMIT)), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(30)


def test_uvicorn_content_length(served):
    response = served.post("/v1/select", content=b"{" * (LIMIT + 1), headers={"content-type": "application/json"})
    assert_413(response)
    assert response.headers["connection"] == "close"


def test_uvicorn_chunked(served):
    request = served.build_request("POST", "/v1/select", content=chunks(LIMIT * 4))
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    assert_413(served.send(request))


def test_uvicorn_chunked_under_the_limit_reaches_the_route(served):
    response = served.post("/v1/select", content=chunks(LIMIT, size=100), headers={"content-type": "application/json"})
    assert response.status_code == 422  # parsed (and refused as JSON): the limit let it through
    assert served.get("/healthz").status_code == 200  # the server is fine after the refusals
