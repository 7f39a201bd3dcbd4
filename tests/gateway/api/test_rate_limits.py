"""Per-key token buckets over HTTP (gateway.api.access): 429 with Retry-After and a message naming the settings,
one bucket per key (none when no keys are configured), probes never limited, 429s counted. The bucket
arithmetic on a fake clock is in tests/gateway/decisions/test_rate_limit.py; here the rate is so slow (one token per
1000 s) that the wall clock adds nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from tests.gateway.api.support import settings

SLOW = {"rate_limit_per_s": 0.001, "rate_limit_burst": 2}
CURATE = {"Authorization": "Bearer curate-k"}
ADMIN = {"Authorization": "Bearer admin-k"}


@pytest.fixture
def keyed():
    with TestClient(create_app(settings(api_keys="curate:curate-k,admin:admin-k", **SLOW))) as client:
        yield client


def test_a_key_over_its_burst_gets_429_with_retry_after(keyed):
    assert [keyed.post("/v1/select", json={}, headers=CURATE).status_code for _ in range(2)] == [422, 422]
    limited = keyed.post("/v1/select", json={}, headers=CURATE)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1000"  # one token at 0.001/s, rounded up to whole seconds
    assert "IMGSEL_RATE_LIMIT_PER_S" in limited.json()["message"] and limited.json()["limit"] == 0.001
    assert limited.headers["x-request-id"]
    # Another key has its own bucket; probes are never limited; the 429 is counted by route.
    assert keyed.get("/v1/index", headers=ADMIN).status_code == 200
    assert all(keyed.get("/healthz").status_code == 200 for _ in range(5))
    assert 'imgsel_requests_total{code="429",route="/v1/select"}' in keyed.get("/metrics").text


def test_refused_keys_spend_no_tokens(keyed):
    for _ in range(5):
        assert keyed.get("/v1/index", headers=CURATE).status_code == 403
        assert keyed.get("/v1/index", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert keyed.post("/v1/select", json={}, headers=CURATE).status_code == 422


def test_an_open_deployment_is_not_rate_limited():
    # No keys, no identity: one (SNAT) address may carry every caller, so no bucket is kept.
    with TestClient(create_app(settings(**SLOW))) as client:
        assert {client.get("/v1/index").status_code for _ in range(5)} == {200}


def test_zero_rate_disables_the_limit():
    with TestClient(create_app(settings(rate_limit_per_s=0, rate_limit_burst=0))) as client:
        assert {client.get("/v1/index").status_code for _ in range(300)} == {200}
