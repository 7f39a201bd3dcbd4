"""POST /v1/report and `python -m tools.report` against the real stack."""

from __future__ import annotations

import base64
from html import escape

from tests.helpers import blurred, corrupt_jpeg, encode, product_photo
from tools import report

RED = (200, 40, 40)
BLUE = (30, 90, 200)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_report_endpoint_returns_the_selection_as_html(client, image_server):
    hero = product_photo(1000, RED, seed=1)
    (image_server.root / "report-hero.jpg").write_bytes(encode(hero))
    images = [
        {"id": "url-hero", "url": f"{image_server.url}/report-hero.jpg", "supplier": "A"},
        {"id": "copy <b>&", "data": b64(encode(hero.resize((700, 700)), quality=75)), "supplier": "B <x>"},
        {"id": "blue", "data": b64(encode(product_photo(1000, BLUE, seed=1))), "supplier": "B <x>"},
        {"id": "blurry", "data": b64(encode(blurred(product_photo(1000, (40, 160, 60), seed=2))))},
        {"id": "corrupt", "data": b64(corrupt_jpeg(encode(hero))), "supplier": "C"},
    ]
    body = {"product_id": "sku-report", "images": images}
    response = client.post("/v1/report", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for image in images:
        assert f'data-id="{escape(image["id"])}"' in html
    assert "copy <b>&" not in html and "B <x>" not in html
    # Same decisions as /v1/select (one select path): duplicate links to the kept image's card.
    selection = client.post("/v1/select", json=body).json()
    verdicts = {v["id"]: v for v in selection["images"]}
    assert verdicts["copy <b>&"]["duplicate_of"] == "url-hero"
    assert 'duplicate of <a href="#in-0">url-hero</a>' in html
    for position, image_id in enumerate(selection["selected"], start=1):
        assert f'id="sel-{position}" data-id="{escape(image_id)}"' in html
    # Decoded images carry Triton's thumbnail inline; the corrupt one has none.
    assert html.count("data:image/jpeg;base64,") == len(images) - 1 + len(selection["selected"])
    assert "not decoded" in html


def test_report_validates_like_select(client):
    response = client.post("/v1/report", json={"product_id": "p", "images": []})
    assert response.status_code == 422


def test_report_command_line_on_local_folders(client, tmp_path):
    for supplier, seed, colour in (("acme", 1, RED), ("globex", 1, RED), ("globex", 2, BLUE)):
        folder = tmp_path / "in" / supplier
        folder.mkdir(parents=True, exist_ok=True)
        quality = 80 if supplier == "acme" else 92
        (folder / f"shot-{seed}.jpg").write_bytes(encode(product_photo(900, colour, seed=seed), quality=quality))
    out = tmp_path / "report.html"
    code = report.main(
        [
            "--images",
            str(tmp_path / "in"),
            "--product-id",
            "sku-cli",
            "--category",
            "apparel",
            "--supplier-from-dirname",
            "--url",
            str(client.base_url),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    html = out.read_text()
    for image_id in ("acme/shot-1.jpg", "globex/shot-1.jpg", "globex/shot-2.jpg"):
        assert f'data-id="{image_id}"' in html
    assert "supplier acme" in html and "supplier globex" in html
    assert html.count('data-status="duplicate"') == 1  # the same picture from two suppliers
