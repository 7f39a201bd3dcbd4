"""gateway.report: the HTML page (structure, order, links, escaping) and thumbnails."""

from __future__ import annotations

import base64
import io
from html import escape
from html.parser import HTMLParser
from tempfile import mkdtemp

import numpy as np
from PIL import Image

from gateway.report import render_report, thumbnail_jpeg, thumbnails_for
from gateway.schemas import SelectRequest, SelectResponse
from tests.helpers import encode, product_photo

EVIL_ID = '<script>alert("x")</script>'
EVIL_SUPPLIER = "<img src=x onerror=alert(1)>"
JPEG = encode(product_photo(side=96), quality=70)
DATA = base64.b64encode(JPEG).decode()


def verdict(image_id, supplier, status, position=None, reasons=(), duplicate_of=None, size=(800, 800), **scores):
    return {
        "id": image_id,
        "supplier": supplier,
        "status": status,
        "position": position,
        "type": "unknown",
        "type_confidence": None,
        "reasons": list(reasons),
        "duplicate_of": duplicate_of,
        "width": size[0] if status != "error" else None,
        "height": size[1] if status != "error" else None,
        "scores": scores or ({"blur": 0.1, "small_object": 0.0} if status != "error" else {}),
    }


def example() -> tuple[SelectRequest, SelectResponse, dict[str, bytes | None]]:
    request = SelectRequest.model_validate(
        {
            "product_id": 'sku "1" & <b>',
            "category": "Nope<",
            "images": [
                {"id": "a1", "data": DATA, "supplier": "A"},
                {"id": "a2", "url": "https://cdn.example/a2.jpg?x=1&y=<2>", "supplier": "A"},
                {"id": EVIL_ID, "data": DATA, "supplier": EVIL_SUPPLIER, "supplier_priority": 1},
                {"id": "b2", "data": DATA, "supplier": "B"},
                {"id": "b3", "data": DATA, "supplier": "B"},
                {"id": "c1", "data": DATA},
            ],
        }
    )
    response = SelectResponse.model_validate(
        {
            "product_id": request.product_id,
            "category": "default",
            "category_source": "default",
            "selected": ["b2", EVIL_ID, "a1"],
            "images": [
                verdict("a1", "A", "selected", position=3),
                verdict("a2", "A", "duplicate", duplicate_of=EVIL_ID, size=(600, 600)),
                verdict(EVIL_ID, EVIL_SUPPLIER, "selected", position=2),
                verdict("b2", "B", "selected", position=1, size=(1200, 900)),
                verdict("b3", "B", "rejected", reasons=["blurry"], blur=0.93, small_object=0.1),
                verdict("c1", None, "error", reasons=["undecodable"]),
            ],
        }
    )
    thumbnails = {v.id: (None if v.status == "error" else JPEG) for v in response.images}
    return request, response, thumbnails


class Page(HTMLParser):
    """Element ids, link targets, card data attributes and text, in document order."""

    def __init__(self, html: str):
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.cards: list[dict[str, str]] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "a":
            self.hrefs.append(attributes["href"])
        if "data-id" in attributes:
            self.cards.append(attributes)
        if tag == "img":
            self.images.append(attributes["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_every_input_appears_once_grouped_by_supplier_and_selected_cards_in_page_order():
    request, response, thumbnails = example()
    page = Page(render_report(request, response, thumbnails))
    inputs = [card for card in page.cards if card["id"].startswith("in-")]
    selected = [card for card in page.cards if card["id"].startswith("sel-")]
    assert sorted(card["data-id"] for card in inputs) == sorted(image.id for image in request.images)
    # Suppliers in first-appearance order, request order inside each.
    assert [card["data-id"] for card in inputs] == ["a1", "a2", EVIL_ID, "b2", "b3", "c1"]
    assert [card["data-id"] for card in selected] == response.selected
    assert [card["id"] for card in selected] == ["sel-1", "sel-2", "sel-3"]
    assert {card["data-id"]: card["data-status"] for card in inputs} == {v.id: v.status for v in response.images}
    text = " ".join(page.text)
    assert "#1 hero" in text and "blurry" in text and "undecodable" in text
    assert "supplier B" in text and "no supplier given" in text


def test_every_link_lands_on_an_element_and_duplicates_point_at_their_representative():
    request, response, thumbnails = example()
    html = render_report(request, response, thumbnails)
    page = Page(html)
    assert len(page.ids) == len(set(page.ids))
    assert page.hrefs and all(href.startswith("#") and href[1:] in page.ids for href in page.hrefs)
    # a2 (input 1) links to the card of the image it duplicates (input 2), which links back.
    assert f'duplicate of <a href="#in-2">{escape(EVIL_ID)}</a>' in html
    assert 'kept over 1 duplicate: <a href="#in-1">a2</a>' in html


def test_user_strings_are_escaped_and_the_page_has_no_script():
    request, response, thumbnails = example()
    html = render_report(request, response, thumbnails)
    assert "<script" not in html.lower()
    assert EVIL_ID not in html and EVIL_SUPPLIER not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "sku &quot;1&quot; &amp; &lt;b&gt;" in html
    assert "Nope&lt;" in html  # the category asked for, shown beside the fallback
    assert "y=&lt;2&gt;" in html
    page = Page(html)
    assert "script" not in page.tags
    assert EVIL_ID in [card["data-id"] for card in page.cards]  # round-trips as text


def test_self_contained_thumbnails_and_placeholders():
    request, response, thumbnails = example()
    html = render_report(request, response, thumbnails)
    page = Page(html)
    # 5 decodable images, each shown in the input grid, plus the 3 selected ones again.
    assert len(page.images) == 5 + 3
    assert all(src.startswith("data:image/jpeg;base64,") for src in page.images)
    assert base64.b64decode(page.images[0].split(",", 1)[1]) == JPEG
    assert "not decoded" in html
    assert "http://" not in html.replace("https://cdn.example", "") and "<link" not in html
    assert "<style>" in html and html.startswith("<!DOCTYPE html>")


def test_renders_without_thumbnails_and_without_selection():
    request, response, _ = example()
    empty = response.model_copy(update={"selected": []})
    html = render_report(request, empty)
    assert "No image was selected." in html and "<img" not in html


def test_thumbnail_restores_the_aspect_ratio():
    thumb = np.asarray(product_photo(side=128))
    wide = Image.open(io.BytesIO(thumbnail_jpeg(thumb, 1600, 800)))
    tall = Image.open(io.BytesIO(thumbnail_jpeg(thumb, 600, 1200)))
    assert wide.size == (128, 64) and tall.size == (64, 128) and wide.format == "JPEG"
    assert thumbnail_jpeg(None, 10, 10) is None
    _, response, _ = example()
    jpegs = thumbnails_for(response, {"a1": thumb, "c1": None})
    assert set(jpegs) == {v.id for v in response.images}
    assert jpegs["a1"] is not None and jpegs["c1"] is None and jpegs["b2"] is None


def test_report_endpoint_glue_without_triton():
    from fastapi.testclient import TestClient

    from contract.categories_file import load_catalog
    from gateway.api.deps import get_curation
    from gateway.app import create_app
    from gateway.decisions.analysis import Verdict
    from gateway.decisions.category import CategoryChoice
    from gateway.services.curation import Curation
    from gateway.settings import Settings
    from tests.database import fresh_database
    from tools.launcher import free_port

    request, response, _ = example()
    thumbs = {v.id: np.asarray(product_photo(side=128)) for v in response.images if v.status != "error"}
    verdicts = [
        Verdict(
            **{
                **v.model_dump(exclude={"placeholder", "placeholder_vote"}),
                "width": v.width or 0,
                "height": v.height or 0,
            }
        )
        for v in response.images
    ]

    class FakeCuration:
        async def curate(self, body):
            assert body.product_id == request.product_id
            choice = CategoryChoice(load_catalog().default, response.category_source, None)
            return Curation(response.product_id, choice, response.selected, verdicts, thumbs)

    settings = Settings.from_env(
        {},
        triton_grpc_url=f"127.0.0.1:{free_port()}",
        triton_timeout_s=2,
        retry_after_s=3,
        data_dir=mkdtemp(),
        database_url=fresh_database(),
    )
    with TestClient(create_app(settings)) as client:
        down = client.post("/v1/report", json={"product_id": "p", "images": [{"id": "a", "data": DATA}]})
        assert down.status_code == 503 and down.headers["retry-after"] == "3"  # no Triton listening
        assert client.post("/v1/report", json={"product_id": "p", "images": []}).status_code == 422
        client.app.dependency_overrides[get_curation] = FakeCuration
        page = client.post("/v1/report", json=request.model_dump(exclude_none=True))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parsed = Page(page.text)
    assert sorted(card["data-id"] for card in parsed.cards if card["id"].startswith("in-")) == sorted(thumbs) + ["c1"]
    assert len(parsed.images) == len(thumbs) + len(response.selected)


def test_the_named_colour_and_each_images_variant_evidence_are_shown_escaped():
    request, response, thumbnails = example()
    request = request.model_copy(update={"colour": "Navy <&>"})
    body = response.model_dump()
    body["colour_terms"] = ["blue"]
    body["images"][0]["variant"] = {"consistent": True, "distance": 0.031, "threshold": 0.5, "colour_share": 0.62}
    body["images"][3]["variant"] = {"consistent": False, "distance": 0.71, "threshold": 0.5, "colour_share": 0.0}
    response = SelectResponse.model_validate(body)
    html = render_report(request, response, thumbnails)
    text = " ".join(Page(html).text)
    assert "Navy <&>" in text and "read as blue" in text and escape("Navy <&>") in html
    assert "own colourway" in text and "distance 0.03 / 0.50" in text and "named colour 0.62" in text
    assert "unlike the product's colour" in text and "distance 0.71 / 0.50" in text
    unread = SelectResponse.model_validate(body | {"colour_terms": []})
    unnamed = render_report(request.model_copy(update={"colour": "Midnight"}), unread)
    assert "read as not understood" in " ".join(Page(unnamed).text)
