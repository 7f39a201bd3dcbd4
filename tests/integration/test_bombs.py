"""Image bombs of every format through the real stack: each is `too_large` on its own, read from its header before
Triton sees it, while the good image of the same product is analysed and selected."""

from __future__ import annotations

import base64

from loadtest.bombs import bombs, png_bomb
from tests.helpers import encode, product_photo


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_bombs_of_every_format_are_too_large_beside_a_good_image(client, image_server):
    files = bombs(20000)  # WebP bitstreams: 16383 a side; all far over 50 megapixels
    (image_server.root / "bomb.png").write_bytes(png_bomb(20000, 20000))
    images = [{"id": "good", "data": b64(encode(product_photo(800, seed=7)))}]
    images += [{"id": name, "data": b64(data)} for name, data in files.items()]
    images.append({"id": "url-png", "url": f"{image_server.url}/bomb.png"})

    response = client.post("/v1/select", json={"product_id": "bombs", "category": "default", "images": images})
    assert response.status_code == 200, response.text
    verdicts = {image["id"]: image for image in response.json()["images"]}
    assert verdicts.pop("good")["status"] == "selected"
    assert {name: (v["status"], v["reasons"]) for name, v in verdicts.items()} == {
        name: ("error", ["too_large"]) for name in [*files, "url-png"]
    }


def test_a_stack_that_has_seen_bombs_still_analyses(client):
    client.post("/v1/select", json={"product_id": "b", "images": [{"id": "b", "data": b64(png_bomb(20000, 20000))}]})
    good = {"id": "after", "data": b64(encode(product_photo(800, seed=8)))}
    response = client.post("/v1/select", json={"product_id": "after", "category": "default", "images": [good]})
    assert response.json()["images"][0]["status"] == "selected"
