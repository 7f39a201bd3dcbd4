"""End to end against the real tritonserver (cpu profile) and the gateway."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import threading

import httpx

from build_engines import repository
from tests.helpers import blurred, corrupt_jpeg, encode, product_photo

RED = (200, 40, 40)
BLUE = (30, 90, 200)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def by_id(response_json: dict) -> dict[str, dict]:
    return {image["id"]: image for image in response_json["images"]}


def test_ready_lists_every_model(client):
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    models = ready.json()["models"]
    assert set(models) == {"analyze"}  # the cpu profile's default: the whole analysis as one model
    assert set(models.values()) == {"READY"}


def test_select_filters_dedups_orders_and_isolates_a_corrupt_image(client, image_server):
    hero = product_photo(1000, RED, seed=1)
    (image_server.root / "hero.jpg").write_bytes(encode(hero))
    images = [
        {"id": "url-hero", "url": f"{image_server.url}/hero.jpg", "supplier": "A"},
        # Same picture, smaller and re-encoded by another supplier: a duplicate of the larger one.
        {"id": "resized-copy", "data": b64(encode(hero.resize((700, 700)), quality=75)), "supplier": "B"},
        # Same style in another colour: must be kept.
        {"id": "blue", "data": b64(encode(product_photo(1000, BLUE, seed=1))), "supplier": "B"},
        {"id": "blurry", "data": b64(encode(blurred(product_photo(1000, (40, 160, 60), seed=2)))), "supplier": "C"},
        {"id": "tiny", "data": b64(encode(product_photo(200, (90, 90, 90), seed=3))), "supplier": "C"},
        {"id": "lost", "data": b64(encode(product_photo(1000, (150, 60, 150), seed=4, object_fraction=0.2)))},
        {"id": "corrupt", "data": b64(corrupt_jpeg(encode(hero))), "supplier": "C"},
        {"id": "gif", "data": b64(b"GIF89a" + bytes(64)), "supplier": "C"},
        {"id": "missing", "url": f"{image_server.url}/nope.jpg", "supplier": "A"},
    ]
    # `default` given explicitly: this test is about filtering; category prediction is tested in test_type_routing.
    response = client.post("/v1/select", json={"product_id": "sku-1", "category": "default", "images": images})
    assert response.status_code == 200, response.text
    body = response.json()
    verdicts = by_id(body)
    assert body["category"] == "default" and body["category_source"] == "request"
    assert [image["id"] for image in body["images"]] == [image["id"] for image in images]  # input order

    assert verdicts["corrupt"]["status"] == "error" and verdicts["corrupt"]["reasons"] == ["undecodable"]
    assert verdicts["gif"]["reasons"] == ["unsupported_format"]
    assert verdicts["missing"]["reasons"] == ["fetch_failed"]
    assert verdicts["resized-copy"]["status"] == "duplicate"
    assert verdicts["resized-copy"]["duplicate_of"] == "url-hero"
    assert verdicts["blurry"]["status"] == "rejected" and "blurry" in verdicts["blurry"]["reasons"]
    assert verdicts["tiny"]["status"] == "rejected" and verdicts["tiny"]["reasons"] == ["low_resolution"]
    assert verdicts["lost"]["status"] == "rejected" and "small_object" in verdicts["lost"]["reasons"]

    assert set(body["selected"]) == {"url-hero", "blue"}
    for position, image_id in enumerate(body["selected"], start=1):
        assert verdicts[image_id]["position"] == position
    hero_verdict = verdicts["url-hero"]
    assert (hero_verdict["width"], hero_verdict["height"]) == (1000, 1000)
    # Only checks that ran are reported; `default` has no type head, so the type is unknown.
    assert set(hero_verdict["scores"]) == {"blur", "small_object", "placeholder"}
    assert hero_verdict["scores"]["placeholder"] < 0.5
    assert hero_verdict["scores"]["blur"] < 0.5 and verdicts["blurry"]["scores"]["blur"] >= 0.5
    assert hero_verdict["type"] == "unknown" and hero_verdict["type_confidence"] is None


def test_known_category_and_max_images(client):
    images = [
        {"id": f"c{i}", "data": b64(encode(product_photo(800, colour, seed=i)))}
        for i, colour in enumerate([RED, BLUE, (40, 160, 60)])
    ]
    body = client.post(
        "/v1/select", json={"product_id": "sku-2", "category": "Apparel", "max_images": 2, "images": images}
    ).json()
    assert body["category"] == "apparel" and body["category_source"] == "request"
    assert len(body["selected"]) == 2
    statuses = sorted(image["status"] for image in body["images"])
    assert statuses == ["rejected", "selected", "selected"]
    assert [r for image in body["images"] for r in image["reasons"]] == ["over_limit"]


def test_dedup_groups_every_id_once(client):
    red = product_photo(900, RED, seed=5)
    images = [
        {"id": "a1", "data": b64(encode(red))},
        {"id": "a2", "data": b64(encode(product_photo(900, BLUE, seed=5)))},
        {"id": "a3", "data": b64(encode(red.resize((600, 600)), quality=70))},
        {"id": "bad", "data": b64(b"\xff\xd8\xff" + bytes(100))},
    ]
    response = client.post("/v1/dedup", json={"images": images})
    assert response.status_code == 200, response.text
    assert response.json() == {"groups": [["a1", "a3"], ["a2"], ["bad"]]}


def test_bad_requests_get_422_naming_the_field(client):
    cases = {
        "product_id": {"images": [{"id": "x", "data": "aGk="}]},
        "images.0": {"product_id": "p", "images": [{"id": "x", "url": "https://a/b.jpg", "data": "aGk="}]},
        "images": {"product_id": "p", "images": [{"id": "x", "data": "aGk="}, {"id": "x", "data": "aGk="}]},
        "max_images": {"product_id": "p", "max_images": 0, "images": [{"id": "x", "data": "aGk="}]},
    }
    for field, body in cases.items():
        response = client.post("/v1/select", json=body)
        assert response.status_code == 422, (field, response.text)
        assert field in response.json()["message"], (field, response.json())


def test_concurrent_requests_are_batched_by_triton(client, stack):
    """Dynamic batching is real: concurrent small products share executions of the analyze model, in batches of at
    most the cpu profile's cap (CpuServing.analyze_preferred_batches: a larger request runs alone).

    The products must reach Triton faster than its two instances finish them: their bodies are serialised up front
    and sent all at once (a barrier), 16 of them where the two instances take at most 8 at a time, so a slow test
    process cannot space them out into executions of one (as 8 products built and sent thread by thread once did)."""
    stats_url = f"http://127.0.0.1:{stack.triton_http_port}/v2/models/analyze/stats"
    products = 16

    def stats() -> dict:
        return httpx.get(stats_url).json()["model_stats"][0]

    def batch_counts(of: dict) -> dict[int, int]:
        return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in of.get("batch_stats", [])}

    bodies = [
        json.dumps(
            {
                "product_id": f"p{i}",
                "images": [{"id": f"i{i}", "data": b64(encode(product_photo(600, (40, 80, 200), seed=i * 10)))}],
            }
        ).encode()
        for i in range(products)
    ]
    start = threading.Barrier(products)

    def send(body: bytes) -> httpx.Response:
        start.wait()
        return client.post("/v1/select", content=body, headers={"content-type": "application/json"})

    before = stats()
    with concurrent.futures.ThreadPoolExecutor(products) as pool:
        responses = list(pool.map(send, bodies))
    assert all(r.status_code == 200 for r in responses)
    after = stats()
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == products
    assert executions < products, f"{executions} analyze executions for {products} concurrent 1-image requests"
    counts_before = batch_counts(before)
    grown = {size for size, count in batch_counts(after).items() if count > counts_before.get(size, 0)}
    assert max(grown) <= max(repository.CpuServing.analyze_preferred_batches), grown


def test_metrics_count_requests(client):
    text = client.get("/metrics").text
    assert 'imgsel_requests_total{code="200",route="/v1/select"}' in text
    assert "imgsel_images_total" in text
