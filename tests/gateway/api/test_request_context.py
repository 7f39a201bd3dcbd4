"""X-Request-ID on every response (the caller's when sane, else a new uuid4 hex), the id in log lines written while
serving, one access log line per request, and a 500 that still carries the id (gateway.api.request_context)."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from gateway.api.deps import get_placeholders
from gateway.api.request_context import request_id
from gateway.app import create_app
from gateway.logs import JsonFormatter
from tests.gateway.api.support import JPEG_B64, select_body, settings

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("given", ["abc-123", "0f8e2c1a-4c1b-4b8e-9d55-2f7d6a1b3c4d", "trace:span/1+x=y@svc"])
def test_a_sane_caller_id_is_kept(given):
    assert request_id(given.encode()) == given


@pytest.mark.parametrize("given", [None, b"", b"has space", b'quote"d', b"x" * 129, b"-leading", b"\xff\xfe", b"a\nb"])
def test_anything_else_gets_a_new_id(given):
    assert NEW_ID.fullmatch(request_id(given))


@pytest.fixture
def access_lines():
    """JSON lines of the access and gateway loggers while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("imgsel.access"), logging.getLogger("imgsel.gateway")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_every_kind_of_answer_carries_the_id(client):
    answers = {
        "ok": client.get("/healthz", headers={"X-Request-ID": "probe-1"}),
        "not found": client.get("/nowhere"),
        "invalid": client.post("/v1/select", json={}),
        "unavailable": client.post("/v1/select", json=select_body({"id": "a", "data": JPEG_B64})),
    }
    assert answers["ok"].headers["x-request-id"] == "probe-1"
    for name, response in answers.items():
        assert response.headers.get("x-request-id"), name
    assert len({r.headers["x-request-id"] for r in answers.values()}) == len(answers)


def test_401_403_413_429_carry_the_id():
    overrides = {"api_keys": "curate:ck", "rate_limit_per_s": 0.001, "rate_limit_burst": 1, "max_body_bytes": 100}
    with TestClient(create_app(settings(**overrides))) as client:
        key = {"Authorization": "Bearer ck", "X-Request-ID": "r-1"}
        codes = [
            client.get("/v1/index", headers={"X-Request-ID": "r-1"}),
            client.get("/v1/index", headers=key),
            client.post("/v1/select", content=b"x" * 101, headers=key),
            client.post("/v1/select", json={}, headers=key),
        ]
    assert [(r.status_code, r.headers["x-request-id"]) for r in codes] == [(401, "r-1"), (403, "r-1")] + [
        (413, "r-1"),
        (429, "r-1"),
    ]


def test_one_access_line_per_request_and_the_id_in_every_line(client, access_lines):
    client.post("/v1/select", json=select_body({"id": "a", "data": JPEG_B64}), headers={"X-Request-ID": "req-7"})
    lines = access_lines()
    access = [line for line in lines if line["logger"] == "imgsel.access"]
    assert len(access) == 1
    (entry,) = access
    assert entry["request_id"] == "req-7" and entry["method"] == "POST" and entry["route"] == "/v1/select"
    assert entry["status"] == 503 and entry["duration_ms"] >= 0 and entry["key_id"] is None
    # The 503 handler's warning was written while serving the same request: it carries the same id.
    warnings = [line for line in lines if line["logger"] == "imgsel.gateway"]
    assert warnings and all(line["request_id"] == "req-7" for line in warnings)


def test_an_unhandled_error_is_a_500_with_the_id(access_lines):
    class Broken:
        def entries(self):
            raise RuntimeError("boom")

    app = create_app(settings())
    app.dependency_overrides[get_placeholders] = Broken
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/placeholders", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "err-1"
    assert response.json() == {"detail": "internal server error", "request_id": "err-1"}
    lines = access_lines()
    assert any(line["level"] == "ERROR" and "boom" in line.get("exception", "") for line in lines)
    assert [(line["status"], line["request_id"]) for line in lines if line["logger"] == "imgsel.access"] == [
        (500, "err-1")
    ]
