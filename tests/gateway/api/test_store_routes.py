"""The state store behind the routes: the library and the index round-trip over HTTP on a real database, and with
no database there (nothing listening, or a server that never answers) every route that needs the store answers 503
with Retry-After within the connect timeout (never 500, never a hang), and /readyz names the state store.

Triton's analysis is answered by the service tests' fake (the app's own services and stores otherwise), so requests
that analyse images first reach the store."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from tests.gateway.api.support import JPEG_B64, RETRY_AFTER_S, select_body, settings
from tests.gateway.services.fakes import HEAD, FakeTriton, analysis_step, raw
from tests.gateway.stores.support import silent_server
from tools.launcher import free_port

CATEGORY = HEAD.classes[0] if HEAD else "apparel"


def analysed_by_a_fake_triton(client: TestClient) -> None:
    """Swap the analysis step of the started app's services for one over FakeTriton (one answer per image)."""
    analysis = analysis_step(FakeTriton([raw(1), raw(2)]))
    for service in (client.app.state.placeholders, client.app.state.search, client.app.state.curation):
        service.analysis = analysis


STORE_REQUESTS = [
    ("GET", "/v1/placeholders", None),
    ("DELETE", "/v1/placeholders/p", None),
    ("POST", "/v1/placeholders", {"images": [{"id": "p", "data": JPEG_B64}]}),
    ("GET", "/v1/index", None),
    ("DELETE", "/v1/index/p", None),
    ("POST", "/v1/index", {"items": [{"product_id": "p", "image_id": "i", "category": CATEGORY, "data": JPEG_B64}]}),
    ("POST", "/v1/search", {"image": {"data": JPEG_B64}, "category": CATEGORY}),
    ("POST", "/v1/select", select_body({"id": "a", "data": JPEG_B64})),
    ("POST", "/v1/report", select_body({"id": "a", "data": JPEG_B64})),
]


def assert_every_store_route_is_503(client: TestClient, within_s: float) -> None:
    for method, path, body in STORE_REQUESTS:
        started = time.perf_counter()
        response = client.request(method, path, json=body)
        elapsed = time.perf_counter() - started
        assert response.status_code == 503, (method, path, response.text)
        assert response.headers["retry-after"] == str(RETRY_AFTER_S), (method, path)
        assert response.json()["detail"].startswith("state store unavailable: "), (method, path)
        assert elapsed < within_s, (method, path, elapsed)


def assert_readyz_names_the_store(client: TestClient, within_s: float) -> None:
    started = time.perf_counter()
    response = client.get("/readyz")
    assert time.perf_counter() - started < within_s
    assert response.status_code == 503 and response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.json()["ready"] is False and response.json()["reason"].startswith("state store: ")


def test_nothing_listening_is_503_with_retry_after_at_once():
    dead = settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/imgsel")
    with TestClient(create_app(dead), raise_server_exceptions=False) as client:
        analysed_by_a_fake_triton(client)
        assert_readyz_names_the_store(client, within_s=2)
        assert_every_store_route_is_503(client, within_s=2)
        assert client.get("/healthz").status_code == 200  # alive: only not ready


def test_a_server_that_never_answers_is_503_within_the_connect_timeout():
    """database_timeout_s 1 -> libpq's connect_timeout 2 s: a probe waits that long, the breaker answers the rest at
    once until its cooldown is over."""
    with silent_server() as port:
        hung = settings(database_url=f"postgresql://postgres@127.0.0.1:{port}/imgsel", database_timeout_s=1)
        started = time.perf_counter()
        with TestClient(create_app(hung), raise_server_exceptions=False) as client:
            analysed_by_a_fake_triton(client)
            assert time.perf_counter() - started < 5  # start-up tried once and went on
            assert_readyz_names_the_store(client, within_s=4)
            assert_every_store_route_is_503(client, within_s=4)


@pytest.mark.skipif(HEAD is None, reason="categories.toml has no [category_head]")
def test_library_and_index_round_trip_over_http():
    with TestClient(create_app(settings())) as client:
        analysed_by_a_fake_triton(client)
        added = client.post("/v1/placeholders", json={"images": [{"id": "soon", "data": JPEG_B64, "supplier": "S"}]})
        assert added.status_code == 200 and added.json()["added"] == ["soon"]
        [entry] = client.get("/v1/placeholders").json()["placeholders"]
        assert (entry["id"], entry["supplier"]) == ("soon", "S")
        assert client.delete("/v1/placeholders/soon").json() == {"deleted": "soon"}
        assert client.get("/v1/placeholders").json() == {"placeholders": []}

        item = {"product_id": "shop/p-1", "image_id": "i", "category": CATEGORY, "data": JPEG_B64}
        assert client.post("/v1/index", json={"items": [item]}).status_code == 200
        assert client.get("/v1/index").json() == {"partitions": {CATEGORY: 1}}
        hits = client.post("/v1/search", json={"image": {"data": JPEG_B64}, "category": CATEGORY}).json()["results"]
        assert [h["image_id"] for h in hits] == ["i"]
        assert client.delete("/v1/index/shop/p-1").json() == {"deleted": "shop/p-1", "images": 1}
        assert client.get("/v1/index").json() == {"partitions": {}}
