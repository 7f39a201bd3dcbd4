"""POST/GET/DELETE /v1/placeholders and the library's effect on /v1/select, against the real stack."""

from __future__ import annotations

import base64

from tests.helpers import encode, product_photo, rendered_placeholder


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_known_placeholder_variant_is_rejected_by_library_match(client):
    known = rendered_placeholder(600, seed=3)
    added = client.post(
        "/v1/placeholders",
        json={
            "images": [
                {"id": "shop-no-image", "data": b64(encode(known, "PNG")), "supplier": "shop"},
                {"id": "broken", "data": b64(b"\xff\xd8\xff" + bytes(50))},
            ]
        },
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"added": ["shop-no-image"], "failed": [{"id": "broken", "reason": "undecodable"}]}
    listed = client.get("/v1/placeholders").json()["placeholders"]
    assert [p["id"] for p in listed] == ["shop-no-image"] and listed[0]["width"] == 600
    assert len(listed[0]["whole_phash"]) == 16 and listed[0]["whole_phash"] != listed[0]["phash"]  # its second key

    product = {
        "product_id": "sku-ph",
        "category": "apparel",
        "images": [
            # A supplier's re-encoded, resized copy of the known placeholder.
            {"id": "variant", "data": b64(encode(known.resize((500, 500)), quality=70))},
            {"id": "photo", "data": b64(encode(product_photo(800, seed=9)))},
        ],
    }
    verdicts = {v["id"]: v for v in client.post("/v1/select", json=product).json()["images"]}
    assert verdicts["variant"]["status"] == "rejected" and "placeholder" in verdicts["variant"]["reasons"]
    assert verdicts["variant"]["placeholder"]["mechanism"] == "library"
    assert verdicts["variant"]["placeholder"]["library_id"] == "shop-no-image"
    assert verdicts["photo"]["status"] == "selected" and verdicts["photo"]["placeholder"] is None

    assert client.delete("/v1/placeholders/shop-no-image").json() == {"deleted": "shop-no-image"}
    assert client.delete("/v1/placeholders/shop-no-image").status_code == 404
    after = {v["id"]: v for v in client.post("/v1/select", json=product).json()["images"]}
    assert after["variant"]["placeholder"] is None or after["variant"]["placeholder"]["mechanism"] != "library"
