"""Curation routes over HTTP (real lifespan, no Triton listening): per-image failures need no Triton, the
per-request image limit."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from tests.gateway.api.support import assert_413_images, select_body, settings


def test_per_image_failures_need_no_triton(client):
    # Nothing reaches the analyzer: each image fails on its own and the request still succeeds.
    response = client.post(
        "/v1/select",
        json=select_body(
            {"id": "private", "url": "http://127.0.0.1:1/x.jpg"},
            {"id": "garbage", "data": base64.b64encode(b"not an image at all").decode()},
            {"id": "bad64", "data": "%%%"},
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["product_id"] == "p-1"
    assert body["selected"] == []
    assert [(i["id"], i["status"], i["reasons"]) for i in body["images"]] == [
        ("private", "error", ["fetch_blocked"]),
        ("garbage", "error", ["undecodable"]),
        ("bad64", "error", ["undecodable"]),
    ]


def test_malformed_url_port_fails_only_that_image():
    with TestClient(create_app(settings()), raise_server_exceptions=False) as test_client:
        response = test_client.post(
            "/v1/select",
            json=select_body(
                {"id": "bad-port", "url": "http://93.184.216.34:99999/x.jpg"},
                {"id": "private", "url": "http://127.0.0.1:1/x.jpg"},
            ),
        )
    assert response.status_code == 200
    assert [i["status"] for i in response.json()["images"]] == ["error", "error"]


@pytest.mark.parametrize("path", ["/v1/select", "/v1/report", "/v1/dedup"])
def test_too_many_images_is_413_naming_the_limit(small_client, path):
    images = [{"id": str(k), "url": f"https://cdn.example/{k}.jpg"} for k in range(3)]
    body = {"images": images} if path == "/v1/dedup" else select_body(*images)
    assert_413_images(small_client.post(path, json=body), "images", 2)


def test_image_limit_is_inclusive(small_client):
    # Exactly the limit passes validation; both fail per image (private address) without Triton.
    images = [{"id": str(k), "url": f"http://127.0.0.1:1/{k}.jpg"} for k in range(2)]
    response = small_client.post("/v1/select", json=select_body(*images))
    assert response.status_code == 200
    assert [i["reasons"] for i in response.json()["images"]] == [["fetch_blocked"], ["fetch_blocked"]]


def test_a_named_colour_is_read_and_said(small_client):
    """Through the body's fast path (gateway.api.json_body) to the response: how the name was read."""
    body = select_body({"id": "a", "url": "http://127.0.0.1:1/a.jpg"}, colour="Navy / off-white")
    response = small_client.post("/v1/select", json=body)
    assert response.status_code == 200 and response.json()["colour_terms"] == ["blue", "white"]
    body["colour"] = "Midnight"
    assert small_client.post("/v1/select", json=body).json()["colour_terms"] == []


def test_routes_take_their_service_from_the_dependency(client):
    """The route presents whatever curation the injected service returns (gateway.api.deps is the only reader of
    the app's state)."""
    from contract.categories_file import load_catalog
    from gateway.api.deps import get_curation
    from gateway.decisions.category import CategoryChoice
    from gateway.services.curation import Curation

    class FakeCuration:
        async def curate(self, body):
            choice = CategoryChoice(load_catalog().get("apparel"), "request", None)
            return Curation(body.product_id, choice, [], [], {})

    client.app.dependency_overrides[get_curation] = FakeCuration
    try:
        response = client.post("/v1/select", json=select_body({"id": "a", "url": "https://cdn.example/a.jpg"}))
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 200
    assert response.json() == {
        "product_id": "p-1",
        "category": "apparel",
        "category_source": "request",
        "category_prediction": None,
        "colour_terms": None,
        "selected": [],
        "images": [],
    }
