"""Visual search through the real stack: index, search (cascade, flat, requested category), delete, bad query."""

from __future__ import annotations

import base64

from build_engines.artifacts import HEADS_DIR
from contract.tensors import EMBEDDING, SEARCH_EMBEDDING, SEARCH_HEAD_MODEL
from tests.helpers import encode, product_photo

COLOURS = [(200, 40, 40), (30, 90, 200), (40, 160, 60), (150, 60, 150)]


def b64_photo(seed: int, colour) -> str:
    return base64.b64encode(encode(product_photo(600, colour, seed=seed))).decode()


def test_index_search_delete_round_trip(client):
    items = [
        {"product_id": f"shirt-{i}", "image_id": f"shirt-{i}-1", "category": "Apparel", "data": b64_photo(i, c)}
        for i, c in enumerate(COLOURS)
    ]
    items.append({"product_id": "broken", "image_id": "broken-1", "category": "apparel", "data": "AAAA"})
    items.append({"product_id": "guess", "image_id": "guess-1", "data": b64_photo(9, (90, 90, 90))})
    indexed = client.post("/v1/index", json={"items": items})
    assert indexed.status_code == 200, indexed.text
    body = indexed.json()
    assert [f["image_id"] for f in body["failed"]] == ["broken-1"]
    by_id = {i["image_id"]: i for i in body["indexed"]}
    assert by_id["shirt-0-1"]["category"] == "apparel" and by_id["shirt-0-1"]["category_source"] == "request"
    ready = client.get("/readyz").json()
    served = "CATEGORY_PROBS" in ready["heads"]
    # The committed search head rides the generated repository: the index holds its retrieval embedding.
    trained = (HEADS_DIR / f"{SEARCH_HEAD_MODEL}.onnx").is_file()
    assert ready["search_vector"] == (SEARCH_EMBEDDING.name if trained else EMBEDDING.name)
    if served:  # no category given: the head's top class is the partition
        assert by_id["guess-1"]["category_source"] == "predicted"
    assert client.get("/v1/index").json()["partitions"]["apparel"] >= 4

    query = {"data": b64_photo(2, COLOURS[2])}
    requested = client.post("/v1/search", json={"image": query, "k": 3, "category": "apparel"}).json()
    assert requested["category_source"] == "request" and requested["searched"] == ["apparel"]
    assert requested["results"][0]["image_id"] == "shirt-2-1" and requested["results"][0]["score"] > 0.99
    flat = client.post("/v1/search", json={"image": query, "k": 10, "cascade": False}).json()
    assert flat["results"][0]["image_id"] == "shirt-2-1"
    assert set(flat["searched"]) >= {"apparel"}
    cascade = client.post("/v1/search", json={"image": query, "k": 3}).json()
    top_one = client.post("/v1/search", json={"image": query, "k": 3, "min_confidence": None}).json()
    if served:
        probabilities = cascade["probabilities"]
        assert sum(probabilities.values()) > 0.99
        assert top_one["category_source"] == "predicted" and top_one["searched"] == [cascade["category"]]
        # the default cascade: the most likely partitions until they hold 0.9 of the probability (the synthetic
        # photos leave the head unsure, so this may be more than one)
        searched = cascade["searched"]
        assert searched[0] == cascade["category"] and set(searched) <= set(flat["searched"])
        assert sum(probabilities[c] for c in searched[:-1]) < 0.9
    else:
        assert cascade["category_source"] == "none"

    assert client.delete("/v1/index/shirt-2").json() == {"deleted": "shirt-2", "images": 1}
    assert client.delete("/v1/index/shirt-2").status_code == 404
    after = client.post("/v1/search", json={"image": query, "k": 10, "category": "apparel"}).json()
    assert "shirt-2-1" not in [r["image_id"] for r in after["results"]]


def test_bad_search_requests_are_422_naming_the_field(client):
    undecodable = client.post("/v1/search", json={"image": {"data": base64.b64encode(b"not an image").decode()}})
    assert undecodable.status_code == 422 and undecodable.json()["message"].startswith("image:")
    no_source = client.post("/v1/search", json={"image": {}})
    assert no_source.status_code == 422 and "image" in no_source.json()["message"]
    bad_k = client.post("/v1/search", json={"image": {"data": b64_photo(1, COLOURS[0])}, "k": 0})
    assert bad_k.status_code == 422 and "k" in bad_k.json()["message"]
    duplicate = {"product_id": "p", "image_id": "x", "data": b64_photo(1, COLOURS[0])}
    twice = client.post("/v1/index", json={"items": [duplicate, duplicate]})
    assert twice.status_code == 422 and "items" in twice.json()["message"]


def test_unknown_partitions_are_422_and_slashed_product_ids_can_be_deleted(client):
    photo = b64_photo(4, COLOURS[3])
    bad = client.post(
        "/v1/index", json={"items": [{"product_id": "p", "image_id": "x", "category": "footwear", "data": photo}]}
    )
    served = "CATEGORY_PROBS" in client.get("/readyz").json()["heads"]
    if served:  # with a head, a partition must be one of its classes (else the cascade could never reach it)
        assert bad.status_code == 422 and bad.json()["message"].startswith("items.0.category:")
        search = client.post("/v1/search", json={"image": {"data": photo}, "category": "fashion"})
        assert search.status_code == 422 and search.json()["message"].startswith("category:")
    # One product's images share one predicted partition (the mean over them), and ids with "/" round-trip.
    items = [{"product_id": "sku/7", "image_id": f"sku/7-{i}", "data": b64_photo(20 + i, COLOURS[i])} for i in range(3)]
    body = client.post("/v1/index", json={"items": items}).json()
    if served:
        assert len({i["category"] for i in body["indexed"]}) == 1
        assert client.delete("/v1/index/sku/7").json() == {"deleted": "sku/7", "images": 3}
