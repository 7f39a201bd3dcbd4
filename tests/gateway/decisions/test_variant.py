"""The own-variant check: the weighted medoid of the accepted images' colour histograms, the verdict field, and the
page order it gives (an outlier never leads its type, is never rejected)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from contract.categories import VariantThresholds
from gateway.decisions.selection import order_selection, select
from gateway.decisions.variant import consensus_checks, supplier_weights, variant_checks
from gateway.hashing import HSV_HIST_BINS, ImageHashes
from tests.gateway.decisions.factories import APPAREL, ids, image, picture

T = VariantThresholds(max_distance=0.3, min_images=3)
CATEGORY = dataclasses.replace(APPAREL, variant=T)


def coloured(index: int, blue: float) -> ImageHashes:
    """A distinct picture (its own hashes) whose colour is `blue` parts of one bin and the rest of another: two
    colourways are the values near 1 and near 0."""
    histogram = np.zeros(HSV_HIST_BINS, np.float32)
    histogram[10], histogram[20] = blue, 1.0 - blue
    return dataclasses.replace(picture(index), hsv_hist=histogram)


def shot(image_id: str, index: int, blue: float, **kwargs):
    return image(image_id, index, hashes=coloured(index, blue), **kwargs)


def test_supplier_weights_rank_priorities_and_put_missing_last():
    assert supplier_weights([None, None]).tolist() == [1.0, 1.0]
    assert supplier_weights([2, 1, None, 2]).tolist() == [0.5, 1.0, 1 / 3, 0.5]


def test_other_colourway_is_inconsistent_even_at_two_of_five():
    images = [
        shot("red-front", 0, 0.0, type="front"),
        shot("red-back", 1, 0.05, type="back"),
        shot("blue-front", 2, 1.0, type="front"),
        shot("blue-detail", 3, 0.95, type="detail"),
        shot("blue-back", 4, 0.9, type="back"),
    ]
    checks = variant_checks(images, T)
    consistent = {a.id: checks[id(a)].consistent for a in images}
    assert consistent == {
        "red-front": False,
        "red-back": False,
        "blue-front": True,
        "blue-detail": True,
        "blue-back": True,
    }
    assert all(checks[id(a)].threshold == T.max_distance for a in images)
    assert checks[id(images[0])].distance > T.max_distance > checks[id(images[4])].distance


def test_supplier_priority_decides_a_two_image_product():
    own, other = shot("own", 1, 1.0, type="front", supplier_priority=1), shot("other", 0, 0.0, type="front")
    checks = variant_checks([other, own], T)
    assert checks[id(own)].consistent and not checks[id(other)].consistent
    assert variant_checks([shot("a", 0, 0.0), shot("b", 1, 1.0)], T) == {}  # no priority: nothing tells them apart


def test_check_is_off_without_thresholds_or_hashes_and_when_consensus_is_ambiguous():
    images = [shot("a", 0, 0.0), shot("b", 1, 1.0), shot("c", 2, 0.5)]
    assert variant_checks(images, None) == {}
    assert variant_checks([image("x", 0, hashes=None), image("y", 1, hashes=None), image("z", 2, hashes=None)], T) == {}
    # three equally far colours (every distance 1): no consensus, no verdict
    assert variant_checks([image("p", 0), image("q", 1), image("r", 2)], T) == {}


def test_planted_front_of_another_colourway_is_not_the_hero_and_is_not_rejected():
    planted = shot("other-front", 0, 0.0, type="front", size=(2000, 2000))  # first, and larger
    own = [
        shot("front", 1, 1.0, type="front"),
        shot("back", 2, 0.95, type="back"),
        shot("detail", 3, 0.9, type="detail"),
    ]
    selected, verdicts = select([planted, *own], CATEGORY)
    assert selected == ["front", "back", "detail", "other-front"]
    by_id = {v.id: v for v in verdicts}
    assert by_id["other-front"].status == "selected" and by_id["other-front"].reasons == []
    assert by_id["other-front"].variant.consistent is False
    assert by_id["front"].variant.consistent is True
    off = dataclasses.replace(CATEGORY, variant=None)
    assert select([planted, *own], off)[0][0] == "other-front"  # the order before the check
    assert all(v.variant is None for v in select([planted, *own], off)[1])


def test_hero_comes_from_consistent_images_when_no_front_is_consistent():
    images = [
        shot("other-front", 0, 0.0, type="front"),
        shot("back", 1, 1.0, type="back"),
        shot("detail", 2, 0.95, type="detail"),
    ]
    assert ids(order_selection(images, CATEGORY, variant_checks(images, T))) == ["back", "detail", "other-front"]


@pytest.mark.parametrize("blues", [(1.0, 0.995), (0.995, 1.0)])
def test_shots_of_the_own_colour_keep_the_resolution_order(blues):
    """Distances within one step tie: the larger of two own-colour fronts leads, whichever is nearer the medoid."""
    images = [
        shot("small", 0, blues[0], type="front", size=(800, 800)),
        shot("large", 1, blues[1], type="front", size=(1600, 1600)),
        shot("back", 2, 1.0, type="back"),
    ]
    assert ids(order_selection(images, CATEGORY, variant_checks(images, T)))[0] == "large"


def test_consensus_rule_takes_any_pairwise_distance():
    images = [
        shot("a", 0, 0.0),
        shot("b", 1, 0.0),
        shot("c", 2, 0.0),
    ]  # one histogram: the shipped check sees no outlier
    assert all(check.consistent for check in variant_checks(images, T).values())
    far = np.array([[0.0, 0.1, 0.9], [0.1, 0.0, 0.8], [0.9, 0.8, 0.0]])
    checks = consensus_checks(images, T, lambda taking_part: far[np.ix_(*[[a.index for a in taking_part]] * 2)])
    assert [(checks[id(a)].consistent, checks[id(a)].distance) for a in images] == [
        (True, 0.1),
        (True, 0.0),
        (False, 0.8),
    ]
    assert consensus_checks(images[:2], T, lambda _: far[:2, :2]) == {}  # the same guards: too few images


NAVY, ORANGE, GREY = (25, 35, 110), (235, 120, 30), (128, 128, 128)


def swatch(rgb: tuple[int, int, int]) -> np.ndarray:
    """A THUMB: a square of `rgb` on white (its foreground)."""
    thumb = np.full((128, 128, 3), 255, np.uint8)
    thumb[32:96, 32:96] = rgb
    return thumb


def named_shot(image_id: str, index: int, blue: float, rgb: tuple[int, int, int], **kwargs):
    """shot() whose thumbnail shows `rgb`: the histogram (set apart, as in shot()) decides the distances, the
    thumbnail the named colour's share."""
    hashes = dataclasses.replace(coloured(index, blue), thumb=swatch(rgb))
    return image(image_id, index, hashes=hashes, **kwargs)


def test_a_named_colour_singles_out_the_own_image_of_two():
    other = named_shot("other", 0, 0.0, ORANGE, type="front", size=(2000, 2000))  # first, and larger
    own = named_shot("own", 1, 1.0, NAVY, type="front")
    assert variant_checks([other, own], T) == {}  # nothing else tells them apart
    checks = variant_checks([other, own], T, frozenset({"blue"}))
    assert checks[id(own)].consistent and checks[id(own)].colour_share == 1.0
    assert not checks[id(other)].consistent and checks[id(other)].colour_share == 0.0
    assert select([other, own], CATEGORY, colours=frozenset({"blue"}))[0] == ["own", "other"]
    assert select([other, own], CATEGORY)[0] == ["other", "own"]  # the order without a name


def test_the_named_colour_outweighs_the_commonest_one():
    """Two planted images of another colourway against the one own image: unnamed, the majority is the consensus."""
    images = [
        named_shot("other-front", 0, 0.0, ORANGE, type="front"),
        named_shot("other-back", 1, 0.05, ORANGE, type="back"),
        named_shot("own-front", 2, 1.0, NAVY, type="front"),
    ]
    unnamed = variant_checks(images, T)
    assert [unnamed[id(a)].consistent for a in images] == [True, True, False]
    named = variant_checks(images, T, frozenset({"blue"}))
    assert [named[id(a)].consistent for a in images] == [False, False, True]
    assert select(images, CATEGORY, colours=frozenset({"blue"}))[0][0] == "own-front"


@pytest.mark.parametrize(("blue", "consistent"), [(0.9, True), (0.7, False)])
def test_an_image_without_the_named_colour_is_inconsistent_unless_its_histogram_is_close(blue, consistent):
    """Chi-square 0.05 (a shot of the same colours) stays consistent without the colour; 0.18, within max_distance
    (0.3) but past NAMED_MIN_DISTANCE, does not."""
    images = [
        named_shot("front", 0, 1.0, NAVY, type="front"),
        named_shot("back", 1, 1.0, NAVY, type="back"),
        named_shot("grey", 2, blue, GREY, type="detail"),
    ]
    checks = variant_checks(images, T, frozenset({"blue"}))
    assert checks[id(images[2])].distance <= T.max_distance
    assert checks[id(images[2])].consistent is consistent
    assert variant_checks(images, T)[id(images[2])].consistent  # the histogram alone keeps it


def test_a_name_that_fits_no_image_or_no_thumbnail_changes_nothing():
    images = [named_shot("a", 0, 0.0, ORANGE), named_shot("b", 1, 0.05, ORANGE), named_shot("c", 2, 1.0, NAVY)]
    assert variant_checks(images, T, frozenset({"green"})) == variant_checks(images, T)
    plain = [shot("a", 0, 0.0), shot("b", 1, 0.05), shot("c", 2, 1.0)]  # no thumbnails: nothing to name
    assert [c.consistent for c in variant_checks(plain, T, frozenset({"blue"})).values()] == [True, True, False]


def test_a_name_shown_only_by_a_trim_is_not_used():
    """Under MIN_BEST_SHARE everywhere (a red tag on a navy product named red): the check runs as unnamed."""
    tagged = swatch(NAVY)
    tagged[32:40, 32:40] = (200, 30, 40)  # 1/64 of the foreground
    images = [
        image("front", 0, hashes=dataclasses.replace(coloured(0, 1.0), thumb=tagged), type="front"),
        named_shot("back", 1, 1.0, NAVY, type="back"),
        named_shot("detail", 2, 0.75, NAVY, type="detail"),
    ]
    assert variant_checks(images, T, frozenset({"red"})) == variant_checks(images, T)


def test_two_shots_of_the_named_colour_get_no_verdict():
    """Two images whose shares differ by a few points: nothing singles one out (as without a name)."""
    patched = swatch(NAVY)
    patched[32:40, 32:96] = GREY  # an eighth of the foreground grey
    images = [
        image("a", 0, hashes=dataclasses.replace(coloured(0, 1.0), thumb=patched), type="front"),
        named_shot("b", 1, 0.4, NAVY, type="back"),
    ]
    assert variant_checks(images, T, frozenset({"blue"})) == {}


def test_an_image_without_a_thumbnail_is_judged_by_its_histogram_alone():
    images = [
        named_shot("other", 0, 0.0, ORANGE, type="front"),
        named_shot("own", 1, 1.0, NAVY, type="back"),
        shot("bare", 2, 0.95, type="detail"),  # hashes without a thumbnail
    ]
    checks = variant_checks(images, T, frozenset({"blue"}))
    assert [checks[id(a)].consistent for a in images] == [False, True, True]
    assert [checks[id(a)].colour_share for a in images] == [0.0, 1.0, None]
