"""Exception handlers over HTTP: Triton down is a 503 with Retry-After at once (and counted), request validation and
a body that is not JSON a 422 whose message names the field (FastAPI's detail list kept, each item with its `type`)."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api.errors import install_error_handlers
from gateway.services.errors import InvalidField
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
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg"}, shop="red")
    assert_422(client.post("/v1/select", json=body), "shop")


@pytest.mark.parametrize("colour", ["", "  ", "x" * 65, 7])
def test_bad_colour(client, colour):
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg"}, colour=colour)
    assert_422(client.post("/v1/select", json=body), "colour")


def test_unknown_image_field(client):
    body = select_body({"id": "a", "url": "https://cdn.example/1.jpg", "colour": "red"})
    assert_422(client.post("/v1/select", json=body), "images.0.colour")


def test_empty_image_list(client):
    assert_422(client.post("/v1/select", json=select_body()), "images")


def test_a_body_that_is_not_utf8_is_422_naming_the_body(client):
    response = client.post("/v1/select", content=b"\x89!z\x7f6[e\xca", headers={"content-type": "application/json"})
    result = assert_422(response, "body")
    assert result["message"].startswith("body: JSON decode error (")
    assert "UTF-8" in result["message"]
    assert [(d["loc"][0], d["type"]) for d in result["detail"]] == [("body", "json_invalid")]


def test_json_nested_past_the_recursion_limit_is_422(client):
    response = client.post("/v1/dedup", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert assert_422(response, "body")["detail"][0]["type"] == "json_invalid"


def test_malformed_json_names_the_body_not_a_character_offset(client):
    response = client.post("/v1/dedup", content=b'{"images": [', headers={"content-type": "application/json"})
    result = assert_422(response, "body")
    assert result["message"].startswith("body: JSON decode error (")
    assert result["detail"][0]["type"] == "json_invalid"


def test_other_http_errors_keep_their_status(client):
    assert client.get("/no/such/route").json() == {"detail": "Not Found"}
    assert client.get("/v1/select").status_code == 405


def test_an_invalid_field_422_has_the_detail_items_the_schema_requires():
    app = FastAPI()
    install_error_handlers(app, RETRY_AFTER_S)

    @app.get("/boom")
    async def boom():
        raise InvalidField("images.0.url", "cannot be fetched")

    response = TestClient(app).get("/boom")
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "images", 0, "url"], "msg": "images.0.url: cannot be fetched", "type": "value_error"}
    ]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity"], ids=["nan", "inf"])
def test_json_that_orjson_refuses_is_422_naming_the_body(client, literal):
    """Where the gateway's JSON parser (orjson, gateway.api.json_body) is stricter than Python's."""
    body = b'{"product_id": "p", "images": [{"id": "a", "url": "https://cdn.example/1.jpg", "supplier_priority": '
    response = client.post("/v1/select", content=body + literal + b"}]}", headers={"content-type": "application/json"})
    assert assert_422(response, "body")["detail"][0]["type"] == "json_invalid"
