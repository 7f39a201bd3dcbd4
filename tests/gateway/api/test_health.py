"""Probes, metrics and docs over HTTP with no Triton listening (and with no database); the readiness reasons as plain
functions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from gateway.api.health import models_reason, unreachable_reason
from gateway.app import create_app
from gateway.clients.breaker import State, Status
from gateway.clients.triton import TritonUnavailable
from tests.gateway.api.support import RETRY_AFTER_S, settings
from tools.launcher import free_port


def test_readyz_without_triton_is_503(client):
    started = time.perf_counter()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert time.perf_counter() - started < 10


def test_readyz_says_why_and_since_when(client):
    client.get("/readyz")  # the first failure opens the circuit breaker
    body = client.get("/readyz").json()
    assert body["ready"] is False
    assert body["reason"].startswith("triton unreachable since ")
    assert body["last_error"]


def test_readyz_checks_the_state_store_first():
    """The database is checked before Triton: unreachable, /readyz says so (503, Retry-After), at once."""
    dead = settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/imgsel")
    with TestClient(create_app(dead)) as client:
        started = time.perf_counter()
        response = client.get("/readyz")
        assert time.perf_counter() - started < 2
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503 and response.headers["retry-after"] == str(RETRY_AFTER_S)
    body = response.json()
    assert body["ready"] is False and body["reason"].startswith("state store: ") and "refused" in body["reason"]


def test_unreachable_reason_with_an_open_breaker_names_the_outage_start():
    status = Status(State.OPEN, down_for_s=90.0, retry_in_s=1.0, last_error="model index: connection refused")
    reason = unreachable_reason(status, TritonUnavailable("x"), datetime(2026, 1, 2, 3, 4, 30, tzinfo=UTC))
    assert reason == {
        "reason": "triton unreachable since 2026-01-02T03:03:00Z (90 s)",
        "last_error": "model index: connection refused",
    }


def test_unreachable_reason_with_a_closed_breaker_gives_the_error():
    status = Status(State.CLOSED, 0.0, 0.0, "")
    reason = unreachable_reason(status, TritonUnavailable("no model index"), datetime.now(UTC))
    assert reason == {"reason": "triton unreachable: no model index"}


def test_models_reason_ready():
    states = {name: "READY" for name in ("analyze", "preprocess", "vision")}
    assert models_reason(states) is None


def test_models_reason_ready_with_the_cpu_profile_s_one_analyze_model():
    assert models_reason({"analyze": "READY"}) is None


def test_models_reason_names_each_model_not_ready_and_each_missing():
    states = {"preprocess": "UNAVAILABLE", "backbone": "LOADING"}  # a stale repository
    reason = models_reason(states)
    assert reason == "models not ready: backbone LOADING, preprocess UNAVAILABLE; missing: analyze"


def test_healthz_is_200_without_triton(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_metrics_count_requests_by_route_and_code(client):
    client.get("/healthz")
    client.post("/v1/select", json={"images": []})
    text = client.get("/metrics").text
    assert "imgsel_requests_total" in text
    assert 'imgsel_requests_total{code="200",route="/healthz"}' in text
    assert 'imgsel_requests_total{code="422",route="/v1/select"}' in text
    assert "imgsel_request_seconds_bucket" in text


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs(client, path):
    assert client.get(path).status_code == 200


def test_openapi_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/select", "/v1/dedup", "/healthz", "/readyz", "/metrics"} <= set(paths)
