"""Placeholder-library routes over HTTP with no Triton listening: the library is readable and deletable, adding
needs Triton (503)."""

from __future__ import annotations

from tests.gateway.api.support import JPEG_B64, RETRY_AFTER_S, assert_413_images


def test_library_routes_without_triton(client):
    assert client.get("/v1/placeholders").json() == {"placeholders": []}
    missing = client.delete("/v1/placeholders/nothing")
    assert missing.status_code == 404 and missing.json() == {"detail": "no placeholder with id 'nothing'"}
    added = client.post("/v1/placeholders", json={"images": [{"id": "p", "data": JPEG_B64}]})
    assert added.status_code == 503 and added.headers["retry-after"] == str(RETRY_AFTER_S)


def test_too_many_placeholders(small_client):
    images = [{"id": str(k), "data": JPEG_B64} for k in range(3)]
    assert_413_images(small_client.post("/v1/placeholders", json={"images": images}), "images", 2)
