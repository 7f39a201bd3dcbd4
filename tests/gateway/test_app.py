"""gateway.app over HTTP (FastAPI TestClient, lifespan included) with no Triton listening: 503s, 422s, probes."""

from __future__ import annotations

import base64
import tempfile
import time

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from tests.helpers import encode, product_photo
from tools.launcher import free_port

JPEG_B64 = base64.b64encode(encode(product_photo(side=64))).decode()
RETRY_AFTER_S = 7


def settings(**overrides) -> Settings:
    return Settings(
        triton_grpc_url=f"127.0.0.1:{free_port()}",
        triton_timeout_s=2,
        retry_after_s=RETRY_AFTER_S,
        data_dir=tempfile.mkdtemp(prefix="imgsel-test-data-"),
        **overrides,
    )


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(settings())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def small_client():
    with TestClient(create_app(settings(max_images_per_request=2))) as test_client:
        yield test_client


def select_body(*images, **fields) -> dict:
    return {"product_id": "p-1", "images": list(images), **fields}


# ---------------------------------------------------------------------------------------------- Triton down


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


# ---------------------------------------------------------------------------------------------- 422


def assert_422(response, field: str) -> dict:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in body["message"], body["message"]
    assert body["detail"], "FastAPI's detail list is kept"
    return body


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


def test_too_many_images(small_client):
    images = [{"id": str(k), "url": f"https://cdn.example/{k}.jpg"} for k in range(3)]
    result = assert_422(small_client.post("/v1/select", json=select_body(*images)), "images")
    assert "at most 2" in result["message"]


def test_too_many_images_on_dedup(small_client):
    images = [{"id": str(k), "url": f"https://cdn.example/{k}.jpg"} for k in range(3)]
    assert_422(small_client.post("/v1/dedup", json={"images": images}), "images")


def test_image_limit_is_inclusive(small_client):
    # Exactly the limit passes validation; both fail per image (private address) without Triton.
    images = [{"id": str(k), "url": f"http://127.0.0.1:1/{k}.jpg"} for k in range(2)]
    response = small_client.post("/v1/select", json=select_body(*images))
    assert response.status_code == 200
    assert [i["reasons"] for i in response.json()["images"]] == [["fetch_blocked"], ["fetch_blocked"]]


# ---------------------------------------------------------------------------------------------- metrics, docs


def test_metrics_count_requests_by_route_and_code(client):
    client.get("/healthz")
    client.post("/v1/select", json={"images": []})
    text = client.get("/metrics").text
    assert "imgsel_requests_total" in text
    assert 'imgsel_requests_total{code="200",route="/healthz"}' in text
    assert 'imgsel_requests_total{code="422",route="/v1/select"}' in text
    assert "imgsel_request_seconds_bucket" in text


def test_unavailable_503s_are_counted(client):
    def count(text: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith("imgsel_triton_unavailable_total "))
        return float(line.split()[1])

    before = count(client.get("/metrics").text)
    client.post("/v1/select", json=select_body({"id": "a", "data": JPEG_B64}))
    assert count(client.get("/metrics").text) == before + 1


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs(client, path):
    assert client.get(path).status_code == 200


def test_openapi_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/select", "/v1/dedup", "/healthz", "/readyz", "/metrics"} <= set(paths)


def test_search_and_index_without_triton_are_503(client):
    search = client.post("/v1/search", json={"image": {"data": JPEG_B64}})
    assert search.status_code == 503 and search.headers["retry-after"] == str(RETRY_AFTER_S)
    index = client.post("/v1/index", json={"items": [{"product_id": "p", "image_id": "i", "data": JPEG_B64}]})
    assert index.status_code == 503
    assert client.get("/v1/index").json() == {"partitions": {}}
    assert client.delete("/v1/index/nothing").status_code == 404
