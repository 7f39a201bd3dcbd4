"""Probes, metrics and docs over HTTP with no Triton listening."""

from __future__ import annotations

import time

import pytest

from tests.gateway.api.support import RETRY_AFTER_S


def test_readyz_without_triton_is_503(client):
    started = time.perf_counter()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert time.perf_counter() - started < 10


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
