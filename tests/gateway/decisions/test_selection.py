"""gateway.decisions.selection: page order, the cap, and select's verdict for every input image."""

import pytest

from contract.reasons import OVER_LIMIT
from gateway.decisions.ranking import SHARP_BLUR_SCORE
from gateway.decisions.selection import order_selection, page_cap, select, split_at_cap
from gateway.decisions.variant import VariantCheck
from tests.gateway.decisions.factories import APPAREL, CATALOG, failed, ids, image, picture


def test_apparel_order_hero_front_then_priority_then_extras_then_unknown():
    reps = [
        image("unknown", 0, type="unknown", size=(900, 900)),
        image("lifestyle", 1, type="lifestyle"),
        image("front_small", 2, type="front", size=(800, 800)),
        image("detail", 3, type="detail"),
        image("back", 4, type="back"),
        image("front_big", 5, type="front", size=(1500, 1500)),
        image("sole", 6, type="sole", size=(3000, 3000)),  # not an apparel type
        image("side", 7, type="side"),
        image("back_2", 8, type="back", size=(700, 700)),
    ]
    ordered = order_selection(reps, APPAREL)
    assert ids(ordered) == [
        "front_big", "back", "side", "detail", "lifestyle",  # one per type, priority order
        "front_small", "back_2",  # extras pushed down, priority order
        "sole", "unknown",  # unknown / foreign types last, best first
    ]  # fmt: skip


def test_hero_follows_the_category_priority():
    reps = [image("front", 0, type="front"), image("side", 1, type="side"), image("pair", 2, type="pair")]
    assert ids(order_selection(reps, CATALOG.get("footwear"))) == ["side", "pair", "front"]


def test_without_type_head_sharp_images_keep_input_order_then_the_rest_by_sharpness_then_area():
    reps = [
        image("soft", 0, scores={"blur": 0.3}, size=(3000, 3000)),
        image("sharp_small", 1, scores={"blur": 0.05}, size=(500, 500)),
        image("sharp_big", 2, scores={"blur": 0.001}, size=(900, 900)),
        image("unmeasured", 3, scores={}),
        image("soft_big", 4, scores={"blur": 0.3}, size=(4000, 4000)),
    ]
    assert SHARP_BLUR_SCORE <= 0.3
    order = ["sharp_small", "sharp_big", "soft_big", "soft", "unmeasured"]
    assert ids(order_selection(reps, APPAREL)) == order
    preferred = [*reps[:2], image("sharp_big", 2, scores={"blur": 0.001}, supplier_priority=1), *reps[3:]]
    assert ids(order_selection(preferred, APPAREL))[:2] == ["sharp_big", "sharp_small"]  # the preferred supplier


def test_without_type_head_only_an_inconsistent_verdict_moves_an_image_not_its_colour_distance():
    main, back, other = (image(name, k, scores={"blur": 0.01}) for k, name in enumerate(("main", "back", "other")))
    variants = {
        id(main): VariantCheck(True, 0.3, 0.5),  # a box's front: further from the consensus than its back
        id(back): VariantCheck(True, 0.01, 0.5),
        id(other): VariantCheck(False, 0.9, 0.5),  # another colourway: after every consistent image
    }
    assert ids(order_selection([other, main, back], APPAREL, variants)) == ["main", "back", "other"]


def test_select_full_apparel_request():
    front = picture(100)
    analyses = [
        image("front_copy", 0, type="front", size=(600, 800), hashes=front),
        failed("broken", 1, "fetch_failed"),
        image("back", 2, type="back"),
        image("blurry", 3, type="side", scores={"blur": 0.9}),
        image("front", 4, type="front", size=(1200, 1600), hashes=front),
        image("front_other", 5, type="front", size=(1000, 1000)),
        image("lifestyle", 6, type="lifestyle"),
    ]
    selected, verdicts = select(analyses, APPAREL, max_images=3)

    assert selected == ["front", "back", "lifestyle"]
    assert [v.id for v in verdicts] == [a.id for a in analyses]
    by_id = {v.id: v for v in verdicts}
    assert {v.id: v.status for v in verdicts} == {
        "front_copy": "duplicate",
        "broken": "error",
        "back": "selected",
        "blurry": "rejected",
        "front": "selected",
        "front_other": "rejected",
        "lifestyle": "selected",
    }
    assert [by_id[i].position for i in selected] == [1, 2, 3]
    assert by_id["front_copy"].duplicate_of == "front" and by_id["front_copy"].position is None
    assert by_id["broken"].reasons == ["fetch_failed"]
    assert by_id["blurry"].reasons == ["blurry"] and by_id["blurry"].scores == {"blur": 0.9}
    assert by_id["front_other"].reasons == [OVER_LIMIT]
    assert (by_id["front"].width, by_id["front"].height, by_id["front"].type) == (1200, 1600, "front")
    assert all(v.reasons == [] for v in verdicts if v.status in ("selected", "duplicate"))


def test_same_picture_of_different_types_is_not_merged():
    same = picture(1)
    analyses = [image("front", 0, type="front", hashes=same), image("back", 1, type="back", hashes=same)]
    selected, verdicts = select(analyses, APPAREL)
    assert selected == ["front", "back"]
    assert all(v.status == "selected" for v in verdicts)


def test_cap_defaults_to_the_category():
    analyses = [image(f"i{i}", i) for i in range(APPAREL.max_images + 2)]
    selected, verdicts = select(analyses, APPAREL, max_images=None)
    assert len(selected) == APPAREL.max_images
    assert [v.reasons for v in verdicts if v.status == "rejected"] == [[OVER_LIMIT]] * 2

    selected, verdicts = select(analyses, APPAREL, max_images=0)
    assert selected == [] and all(v.reasons == [OVER_LIMIT] for v in verdicts)
    with pytest.raises(ValueError, match="max_images"):
        select(analyses, APPAREL, max_images=-1)


def test_only_errors_gives_empty_selection():
    selected, verdicts = select([failed("a", 0), failed("b", 1, "too_large")], APPAREL)
    assert selected == []
    assert [(v.status, v.reasons) for v in verdicts] == [("error", ["undecodable"]), ("error", ["too_large"])]


def test_page_cap_and_split():
    assert page_cap(APPAREL, None) == APPAREL.max_images and page_cap(APPAREL, 3) == 3
    with pytest.raises(ValueError, match="max_images"):
        page_cap(APPAREL, -1)
    items = [image(f"i{i}", i) for i in range(4)]
    assert split_at_cap(items, 3) == (items[:3], items[3:])
    assert split_at_cap(items, 0) == ([], items)
