"""Exception handlers over HTTP: Triton down is a 503 with Retry-After at once (and counted), request validation a
422 whose message names the field (FastAPI's detail list kept)."""

from __future__ import annotations

import time

from tests.gateway.api.support import JPEG_B64, RETRY_AFTER_S, assert_422, select_body


def test_select_without_triton_is_503_with_retry_after_and_no_hang(client):
    started = time.perf_counter()
    response = client.post("/v1/select", json=select_body({"id": "a", "data": JPEG_B64}))
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert "unavailable" in response.json()["detail"]
    assert elapsed < 10


def test_dedup_without_triton_is_503_too(client):
    response = client.post("/v1/dedup", json={"images": [{"id": "a", "data": JPEG_B64}]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)


def test_unavailable_503s_are_counted(client):
    def count(text: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith("imgsel_triton_unavailable_total "))
        return float(line.split()[1])

    before = count(client.get("/metrics").text)
    client.post("/v1/select", json=select_body({"id": "a", "data": JPEG_B64}))
    assert count(client.get("/metrics").text) == before + 1


def test_missing_product_id(client):
    body = {"images": [{"id": "a", "data": JPEG_B64}]}
    assert_422(client.post("/v1/select", json=body), "product_id")


def test_both_url_and_data(client):
    body = select_body({"id": "a", "data": JPEG_B64, "url": "https://cdn.example/a.jpg"})
    result = assert_422(client.post("/v1/select", json=body), "images.0")
    assert "exactly one" in result["message"]


def test_neither_url_nor_data(client):
    assert_422(client.post("/v1/select", json=select_body({"id": "a"})), "images.0")


def test_ftp_url(client):
    body = select_body({"id": "a", "url": "ftp://cdn.example/a.jpg"})
    result = assert_422(client.post("/v1/select", json=body), "images.0")
    assert "http" in result["message"]


def test_duplicate_ids(client):
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg"}, {"id": "a", "url": "https://cdn.example/2.jpg"})
    result = assert_422(client.post("/v1/select", json=body), "images")
    assert "duplicate" in result["message"]


def test_unknown_top_level_field(client):
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg"}, colour="red")
    assert_422(client.post("/v1/select", json=body), "colour")


def test_unknown_image_field(client):
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg", "colour": "red"})
    assert_422(client.post("/v1/select", json=body), "images.0.colour")


def test_empty_image_list(client):
    assert_422(client.post("/v1/select", json=select_body()), "images")
