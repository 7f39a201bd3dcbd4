"""Visual-search routes over HTTP with no Triton listening."""

from __future__ import annotations

from tests.gateway.api.support import JPEG_B64, RETRY_AFTER_S, assert_413_images


def test_search_and_index_without_triton_are_503(client):
    search = client.post("/v1/search", json={"image": {"data": JPEG_B64}})
    assert search.status_code == 503 and search.headers["retry-after"] == str(RETRY_AFTER_S)
    index = client.post("/v1/index", json={"items": [{"product_id": "p", "image_id": "i", "data": JPEG_B64}]})
    assert index.status_code == 503
    assert client.get("/v1/index").json() == {"partitions": {}}
    assert client.delete("/v1/index/nothing").status_code == 404


def test_too_many_index_items_is_413(small_client):
    items = [{"product_id": "p", "image_id": str(k), "data": JPEG_B64} for k in range(3)]
    assert_413_images(small_client.post("/v1/index", json={"items": items}), "items", 2)
