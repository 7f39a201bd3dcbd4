"""The unseen-placeholder category vote through /v1/select, against the real stack: it abstains on a category
without exemplars, learns exemplars from accepted products, then an unseen placeholder is rejected with `vote` or
`head` evidence. Uses real catalog photos (../shared/data); skips when they are absent."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from training import placeholder_synthesis as ps
from training.quality_data import rng_for

CATALOG = Path(__file__).resolve().parents[3] / "shared" / "data" / "catalog"
CATEGORY = "sofa"  # a category no other integration test selects in: its exemplar ring starts empty
VOTE_EXEMPLARS = 11  # IMGSEL_PLACEHOLDER_VOTE_EXEMPLARS default
VOTE_QUORUM = 6  # IMGSEL_PLACEHOLDER_VOTE_MIN_EXEMPLARS default: the vote runs from this many


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unseen_placeholder() -> bytes:
    fonts = ps.font_paths()
    rng = rng_for("integration-unseen-placeholder")
    image = ps.text_placeholder(rng, "Produktbild folgt", fonts[0] if fonts else None)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_unseen_placeholder_rejected_after_the_category_has_exemplars(client):
    photos = sorted(CATALOG.glob("*_main.jpg"))
    if len(photos) < VOTE_EXEMPLARS + 2:
        pytest.skip(f"development catalog photos not found under {CATALOG}")
    placeholder = {"id": "ph", "data": b64(unseen_placeholder())}

    def select(product_id: str, images: list[dict]) -> dict:
        response = client.post("/v1/select", json={"product_id": product_id, "category": CATEGORY, "images": images})
        assert response.status_code == 200, response.text
        return {v["id"]: v for v in response.json()["images"]}

    # Cold start: no exemplars yet, the vote abstains and says so.
    cold = select("cold", [{"id": "photo", "data": b64(photos[0].read_bytes())}])
    assert cold["photo"]["status"] == "selected"
    assert cold["photo"]["placeholder_vote"]["outcome"] == "abstained"
    assert cold["photo"]["placeholder_vote"]["needed"] == VOTE_QUORUM

    # Accepted products become the category's exemplars (one per product counts).
    for n, photo in enumerate(photos[1 : VOTE_EXEMPLARS + 1]):
        verdict = select(f"sku-{n}", [{"id": "hero", "data": b64(photo.read_bytes())}])["hero"]
        assert verdict["status"] == "selected", verdict

    verdicts = select(
        "sku-new",
        [placeholder, {"id": "photo", "data": b64(photos[VOTE_EXEMPLARS + 1].read_bytes())}],
    )
    rejected, photo = verdicts["ph"], verdicts["photo"]
    assert rejected["status"] == "rejected" and "placeholder" in rejected["reasons"], rejected
    assert rejected["placeholder"]["mechanism"] in ("vote", "head")
    vote = rejected["placeholder_vote"]
    assert vote["exemplars"] == VOTE_EXEMPLARS and vote["outcome"] in ("placeholder", "product")
    assert vote["votes_needed"] == 5  # 5 of 11
    if rejected["placeholder"]["mechanism"] == "vote":
        assert rejected["placeholder"]["votes"] >= 5 and rejected["placeholder"]["exemplars"] == VOTE_EXEMPLARS
    # A real product photo of the same category passes the vote.
    assert photo["status"] == "selected" and photo["placeholder_vote"]["outcome"] == "product", photo
