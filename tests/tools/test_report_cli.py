"""tools.report: the request it builds from local files, and the command line posting it."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.report import render_report
from gateway.schemas import SelectRequest
from tests.gateway.test_report import JPEG, example
from tests.helpers import encode, product_photo
from tools import report
from tools.report import request_from_files


def test_request_from_files_uses_paths_as_ids_and_folders_as_suppliers(tmp_path):
    for supplier in ("acme", "globex"):
        (tmp_path / supplier).mkdir()
        (tmp_path / supplier / "front.jpg").write_bytes(JPEG)
    (tmp_path / "acme" / "notes.txt").write_text("not an image")
    loose = tmp_path / "loose.PNG"
    loose.write_bytes(encode(product_photo(side=64), "PNG"))
    body = request_from_files([str(tmp_path / "acme"), str(tmp_path / "globex"), str(loose)], "p1", "apparel", True)
    assert [(i["id"], i["supplier"]) for i in body["images"]] == [
        ("front.jpg", "acme"),
        ("front.jpg#2", "globex"),
        ("loose.PNG", tmp_path.name),
    ]
    assert base64.b64decode(body["images"][0]["data"]) == JPEG
    assert body["category"] == "apparel" and "max_images" not in body
    SelectRequest.model_validate(body)  # a valid /v1/select body
    plain = request_from_files([str(tmp_path)], "p1")
    assert [i["id"] for i in plain["images"]] == ["acme/front.jpg", "globex/front.jpg", "loose.PNG"]
    assert all("supplier" not in i for i in plain["images"]) and "colour" not in plain
    named = request_from_files([str(tmp_path)], "p1", colour="navy")
    assert SelectRequest.model_validate(named).colour == "navy"


def test_cli_posts_the_request_and_writes_the_page(tmp_path, monkeypatch):
    import httpx

    request, response, thumbnails = example()
    sent = {}

    def fake_post(url, json, timeout):
        sent.update(url=url, body=json)
        return httpx.Response(200, text=render_report(request, response, thumbnails))

    monkeypatch.setattr(httpx, "post", fake_post)
    body_file = tmp_path / "request.json"
    body_file.write_text(json.dumps(request.model_dump(exclude_none=True)))
    out = tmp_path / "report.html"
    assert report.main(["--request", str(body_file), "--url", "http://gw:9/", "--out", str(out)]) == 0
    assert sent["url"] == "http://gw:9/v1/report" and sent["body"]["product_id"] == request.product_id
    assert "a2" in out.read_text()

    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(422, json={"message": "images: bad"}))
    assert report.main(["--request", str(body_file), "--out", str(out)]) == 1
    with pytest.raises(SystemExit):
        report.main(["--images", str(tmp_path)])  # --product-id missing
