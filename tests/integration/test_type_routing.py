"""Routing to the category's type head: apparel has a trained head, `default` has none."""

from __future__ import annotations

import base64

from tests.images import encode, product_photo


def test_apparel_images_get_types_from_the_head_and_unknown_category_does_not(client):
    images = [
        {"id": f"t{i}", "data": base64.b64encode(encode(product_photo(800, colour, seed=i))).decode()}
        for i, colour in enumerate([(200, 40, 40), (30, 90, 200)])
    ]
    apparel = client.post("/v1/select", json={"product_id": "p", "category": "apparel", "images": images}).json()
    types = set(client.get("/readyz").json()["models"])
    assert "type_apparel" in types
    for image in apparel["images"]:
        assert image["type"] in ("front", "back", "detail")  # the learned apparel types
        assert 0.0 < image["type_confidence"] <= 1.0
    unknown = client.post("/v1/select", json={"product_id": "p", "category": "no-such", "images": images}).json()
    assert unknown["category"] == "default"
    assert {image["type"] for image in unknown["images"]} == {"unknown"}
