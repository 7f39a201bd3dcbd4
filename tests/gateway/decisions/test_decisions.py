import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from contract.categories_file import load_catalog
from gateway.decisions import (
    NEUTRAL_BLUR_SCORE,
    OVER_LIMIT,
    ImageAnalysis,
    cluster_duplicates,
    dedup_groups,
    order_selection,
    rejection_reasons,
    representative_key,
    select,
)
from gateway.hashing import HSV_HIST_BINS, ImageHashes, compute_hashes

CATALOG = load_catalog()
APPAREL = CATALOG.get("apparel")
DEDUP = APPAREL.dedup


def picture(k: int) -> ImageHashes:
    """Hashes of the k-th distinct picture: random 64-bit hashes (about 32 bits apart) and its own colour bin."""
    rng = np.random.default_rng(k)
    histogram = np.zeros(HSV_HIST_BINS, np.float32)
    histogram[k % HSV_HIST_BINS] = 1.0
    return ImageHashes(
        phash=int(rng.integers(0, 2**64, dtype=np.uint64)),
        dhash_edge=int(rng.integers(0, 2**64, dtype=np.uint64)),
        hsv_hist=histogram,
    )


def image(
    image_id: str,
    index: int,
    *,
    type: str = "unknown",
    size: tuple[int, int] = (1000, 1000),
    scores: dict[str, float] | None = None,
    hashes: ImageHashes | None = None,
    supplier_priority: int | None = None,
) -> ImageAnalysis:
    return ImageAnalysis(
        id=image_id,
        supplier="A",
        index=index,
        ok=True,
        width=size[0],
        height=size[1],
        scores={"blur": 0.1} if scores is None else scores,
        type=type,
        type_confidence=None if type == "unknown" else 0.9,
        hashes=picture(index) if hashes is None else hashes,
        supplier_priority=supplier_priority,
    )


def failed(image_id: str, index: int, reason: str = "undecodable") -> ImageAnalysis:
    return ImageAnalysis(id=image_id, supplier="B", index=index, ok=False, error_reason=reason)


def ids(items: list[ImageAnalysis]) -> list[str]:
    return [a.id for a in items]


# --- rejection ---------------------------------------------------------------------------------------------------


def test_every_check_rejects_at_its_threshold():
    a = image(
        "a", 0, size=(1200, 399),
        scores={"blur": 0.5, "small_object": 0.7, "placeholder": 0.9, "nsfw": 0.6, "violence": 0.8},
    )  # fmt: skip
    assert rejection_reasons(a, APPAREL) == ["low_resolution", "blurry", "small_object", "placeholder", "non_compliant"]


def test_passing_and_absent_scores_do_not_reject():
    assert rejection_reasons(image("a", 0, size=(400, 400), scores={"blur": 0.49, "nsfw": 0.1}), APPAREL) == []
    assert rejection_reasons(image("b", 1, scores={}), APPAREL) == []
    assert rejection_reasons(image("c", 2, scores={"violence": 0.5}), APPAREL) == ["non_compliant"]
    assert rejection_reasons(image("d", 3, size=(450, 450)), CATALOG.get("television")) == ["low_resolution"]


def test_error_reason_is_validated():
    with pytest.raises(ValueError, match="error_reason"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=False)
    with pytest.raises(ValueError, match="error_reason"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=True, error_reason="undecodable")
    with pytest.raises(ValueError, match="sharpness"):
        ImageAnalysis(id="x", supplier=None, index=0, ok=True, scores={"sharpness": 1.0})


# --- representatives and clustering ------------------------------------------------------------------------------


def test_representative_key_prefers_area_then_sharpness_then_supplier_then_input_order():
    ranked = sorted(
        [
            image("late", 6, scores={"blur": 0.2}),
            image("no_supplier", 5, scores={"blur": 0.2}),
            image("supplier2", 4, scores={"blur": 0.2}, supplier_priority=2),
            image("supplier1", 3, scores={"blur": 0.2}, supplier_priority=1),
            image("unmeasured", 2, scores={}),
            image("sharp", 1, scores={"blur": 0.01}),
            image("huge_blurry", 0, size=(3000, 3000), scores={"blur": 0.45}),
        ],
        key=representative_key,
    )
    assert NEUTRAL_BLUR_SCORE > 0.2
    assert ids(ranked) == ["huge_blurry", "sharp", "supplier1", "supplier2", "no_supplier", "late", "unmeasured"]


def product_photo(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), (240, 240, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([size * 0.2, size * 0.15, size * 0.8, size * 0.9], fill=(30, 90, 180))
    draw.ellipse([size * 0.4, size * 0.3, size * 0.6, size * 0.5], fill=(250, 220, 40))
    return img


def thumb_hashes(img: Image.Image) -> ImageHashes:
    return compute_hashes(np.asarray(img.resize((128, 128), Image.Resampling.BILINEAR)))


def test_cluster_representative_is_the_highest_resolution_copy():
    sizes = [300, 1200, 600]
    copies = [image(f"copy{s}", i, size=(s, s), hashes=thumb_hashes(product_photo(s))) for i, s in enumerate(sizes)]
    other = image("other", 3, size=(2000, 2000), hashes=thumb_hashes(product_photo(400).rotate(90)))
    clusters = cluster_duplicates([*copies, other], DEDUP)
    assert [ids(c) for c in clusters] == [["other"], ["copy1200", "copy600", "copy300"]]


def with_phash(hashes: ImageHashes, phash: int) -> ImageHashes:
    return ImageHashes(phash=phash, dhash_edge=hashes.dhash_edge, hsv_hist=hashes.hsv_hist)


def test_no_transitive_chaining():
    base = picture(0)
    step = DEDUP.phash_max_distance // 2 + 1  # one step is within the (tuned) threshold, two steps are beyond it
    assert step <= DEDUP.phash_max_distance < 2 * step
    one_step, two_steps = (1 << step) - 1, (1 << (2 * step)) - 1
    a = image("a", 0, size=(3000, 3000), hashes=with_phash(base, 0))
    b = image("b", 1, size=(2000, 2000), hashes=with_phash(base, one_step))  # one step from a
    c = image("c", 2, size=(1000, 1000), hashes=with_phash(base, two_steps))  # one step from b, two from a
    assert [ids(cluster) for cluster in cluster_duplicates([c, b, a], DEDUP)] == [["a", "b"], ["c"]]


def test_images_without_hashes_are_never_duplicates():
    same = picture(7)
    items = [image("x", 0, hashes=same), image("y", 1, hashes=same), image("z", 2)]
    items[2].hashes = None
    unhashed = image("w", 3, size=(5000, 5000))
    unhashed.hashes = None
    clusters = cluster_duplicates([*items, unhashed], DEDUP)
    assert [ids(c) for c in clusters] == [["w"], ["x", "y"], ["z"]]


def test_two_hundred_images_cluster_quickly():
    rng = np.random.default_rng(0)
    items = [
        image(f"p{k}-{copy}", index, size=(800 + copy, 800), hashes=picture(k))
        for index, (k, copy) in enumerate((k, copy) for k in range(40) for copy in range(5))
    ]
    shuffled = [items[i] for i in rng.permutation(len(items))]
    started = time.perf_counter()
    clusters = cluster_duplicates(shuffled, DEDUP)
    selected, verdicts = select(shuffled, CATALOG.default, max_images=50)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert len(clusters) == 40 and all(len(c) == 5 for c in clusters)
    assert all(c[0].width == 804 for c in clusters)
    assert len(selected) == 40 and sum(v.status == "duplicate" for v in verdicts) == 160


# --- ordering ----------------------------------------------------------------------------------------------------


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


def test_without_type_head_order_is_by_sharpness_then_area():
    reps = [
        image("soft", 0, scores={"blur": 0.3}, size=(3000, 3000)),
        image("sharp_small", 1, scores={"blur": 0.05}, size=(500, 500)),
        image("sharp_big", 2, scores={"blur": 0.05}, size=(900, 900)),
        image("unmeasured", 3, scores={}),
    ]
    assert ids(order_selection(reps, APPAREL)) == ["sharp_big", "sharp_small", "soft", "unmeasured"]


# --- select ------------------------------------------------------------------------------------------------------


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


# --- dedup_groups ------------------------------------------------------------------------------------------------


def test_dedup_groups_cover_every_id_once_ignoring_type_and_quality():
    same = picture(5)
    analyses = [
        image("solo", 0),
        image("dup_small", 1, type="front", size=(500, 500), hashes=same),
        failed("broken", 2),
        image("dup_big_blurry", 3, type="back", size=(2000, 2000), scores={"blur": 0.99}, hashes=same),
        image("dup_mid", 4, size=(800, 800), hashes=same),
    ]
    groups = dedup_groups(analyses, DEDUP)
    assert groups == [["solo"], ["dup_big_blurry", "dup_small", "dup_mid"], ["broken"]]
    flat = [i for group in groups for i in group]
    assert sorted(flat) == sorted(a.id for a in analyses)
    assert dedup_groups([], DEDUP) == []
