"""Routing to the category's type head (one output of the vision model, TYPE_PROBS_<category>): apparel has a trained
head, `default` has none."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import encode, product_photo


def test_apparel_images_get_types_from_the_head_and_unknown_category_does_not(client):
    images = [
        {"id": f"t{i}", "data": base64.b64encode(encode(product_photo(800, colour, seed=i))).decode()}
        for i, colour in enumerate([(200, 40, 40), (30, 90, 200)])
    ]
    apparel = client.post("/v1/select", json={"product_id": "p", "category": "apparel", "images": images}).json()
    heads = set(client.get("/readyz").json()["heads"])
    assert "TYPE_PROBS_apparel" in heads
    for image in apparel["images"]:
        assert image["type"] in ("front", "back", "detail")  # the learned apparel types
        assert 0.0 < image["type_confidence"] <= 1.0
    unknown = client.post("/v1/select", json={"product_id": "p", "category": "no-such", "images": images}).json()
    prediction = unknown["category_prediction"]
    if "CATEGORY_PROBS" not in heads:  # no top-level head served: straight to `default`
        assert prediction is None and unknown["category_source"] == "default"
    else:  # the head's verdict decides, and the response says what it saw
        assert prediction["images"] == 2 and sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert unknown["category_source"] == ("predicted" if prediction["trusted"] else "default")
    if unknown["category_source"] == "default":
        assert unknown["category"] == "default"
        assert {image["type"] for image in unknown["images"]} == {"unknown"}
    else:
        assert unknown["category"] == prediction["category"]


def test_category_is_predicted_only_when_the_request_has_none_known(client):
    image = {"id": "x", "data": base64.b64encode(encode(product_photo(800, (30, 90, 200), seed=3))).decode()}
    given = client.post("/v1/select", json={"product_id": "q", "category": "apparel", "images": [image]}).json()
    assert given["category_source"] == "request" and given["category_prediction"] is None
    absent = client.post("/v1/select", json={"product_id": "q", "images": [image]}).json()
    served = "CATEGORY_PROBS" in client.get("/readyz").json()["heads"]
    assert (absent["category_prediction"] is not None) == served
    assert absent["category_source"] in (("predicted", "default") if served else ("default",))
