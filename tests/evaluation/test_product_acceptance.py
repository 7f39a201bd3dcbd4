"""evaluation.product_acceptance: the pages it builds from a listing, and how an answer is checked against each
expectation (the running-service part is `python -m evaluation.product_acceptance`, on ../shared/data)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from evaluation.product_acceptance import EXPECTATIONS, check, how_answered, pages, summary
from evaluation.variant_data import VariantListing
from tests.helpers import encode, product_photo


def verdict(image_id: str, status: str = "selected", reasons=(), duplicate_of=None, type_="front") -> dict:
    return {"id": image_id, "status": status, "reasons": list(reasons), "duplicate_of": duplicate_of, "type": type_}


def listing(tmp_path) -> VariantListing:
    """Style s1 in red (front, back) and blue (front): red's page plants blue's front; blue has one image only."""
    rows = [
        ("s1-red", "front", (200, 40, 40), 1),
        ("s1-red", "back", (190, 50, 40), 2),
        ("s1-blue", "front", (40, 40, 200), 3),
    ]
    paths = []
    for k, (_, _, colour, seed) in enumerate(rows):
        path = tmp_path / f"{k}.jpg"
        path.write_bytes(encode(product_photo(500, colour, seed=seed)))
        paths.append(path)
    return VariantListing(paths, ["catalog"] * 3, [r[0] for r in rows], ["s1"] * 3, [r[1] for r in rows])


def test_pages_send_the_planted_colourway_first_and_the_copies_of_the_own_front(tmp_path):
    placeholder = tmp_path / "no_image.png"
    Image.new("RGBA", (300, 300), (230, 230, 230, 255)).save(placeholder)
    ([page], under) = pages(listing(tmp_path), [placeholder])  # blue has one own image: no page
    assert under == []
    ids = [image["id"] for image in page.body["images"]]
    assert ids == ["colourway", "own-0", "own-1", "resized", "blurred", "placeholder"]
    assert page.body["category"] == "apparel" and page.view == "own-1" and page.product == "s1-red"
    suppliers = {image["id"]: image["supplier"] for image in page.body["images"]}
    assert suppliers["own-0"] == "A" and suppliers["colourway"] == suppliers["resized"] == "B"
    resized = Image.open(io.BytesIO(base64.b64decode(page.body["images"][3]["data"])))
    assert resized.size == (400, 400)  # 60% of the 500 px front is under apparel's min_side (400)


def test_check_reads_each_expectation_from_the_answer(tmp_path):
    placeholder = tmp_path / "no_image.png"
    Image.new("RGB", (300, 300), (230, 230, 230)).save(placeholder)
    ([page], _) = pages(listing(tmp_path), [placeholder])
    good = {
        "selected": ["own-0", "own-1", "colourway"],
        "images": [
            verdict("colourway"),
            verdict("own-0"),
            verdict("own-1", type_="back"),
            verdict("resized", "duplicate", duplicate_of="own-0"),
            verdict("blurred", "rejected", ["blurry"]),
            verdict("placeholder", "rejected", ["low_resolution", "placeholder"]),
        ],
    }
    assert check(page, good) == dict.fromkeys((*EXPECTATIONS, "all"), True)

    bad = {
        "selected": ["colourway", "own-0"],
        "images": [
            verdict("colourway"),
            verdict("own-0"),
            verdict("own-1", "rejected", ["low_resolution"]),
            verdict("resized"),  # not merged with its original
            verdict("blurred", "duplicate", duplicate_of="own-0"),  # merged: right too
            verdict("placeholder", "rejected", ["low_resolution"]),  # rejected, but not called a placeholder
        ],
    }
    met = check(page, bad)
    assert [name for name, ok in met.items() if not ok] == ["placeholder", "resized", "view_kept", "hero", "all"]
    answers = how_answered(page, bad)
    assert answers["placeholder"] == "rejected low_resolution" and answers["hero"] == "hero colourway (front)"
    assert answers["blurred"] == "duplicate of own-0"

    report = summary(
        [
            {"source": "catalog", "product": "s1-red", "met": check(page, good), "answers": how_answered(page, good)},
            {"source": "catalog", "product": "mh13-blue", "met": met, "answers": answers},
        ]
    )
    assert report["all"]["all"] == 0.5 and report["catalog"]["blurred"] == 1.0
    assert report["all"]["misses"]["placeholder"] == {"rejected low_resolution": 1}
    assert report["catalog, own photos agree"]["pages"] == 1  # mh13-blue's own photos show two colours


def test_a_product_under_the_category_min_side_is_left_out(tmp_path):
    images = listing(tmp_path)
    images.paths[1].write_bytes(encode(product_photo(300, (190, 50, 40), seed=2)))  # the back: under apparel's 400
    assert pages(images, [tmp_path / "0.jpg"]) == ([], ["s1-red"])
