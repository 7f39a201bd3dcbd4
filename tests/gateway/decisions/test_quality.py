"""gateway.decisions.quality: one check per rejection reason, composed by rejection_reasons."""

import pytest

from gateway.decisions.quality import (
    REJECTION_CHECKS,
    has_text_overlay,
    is_blurry,
    is_low_resolution,
    is_non_compliant,
    is_small_object,
    rejection_reasons,
)
from tests.gateway.decisions.factories import APPAREL, CATALOG, image


def test_every_check_rejects_at_its_threshold():
    a = image(
        "a", 0, size=(1200, 399),
        scores={"blur": 0.5, "small_object": 0.7, "placeholder": 0.9},
        compliance={"nsfw": 0.6, "violence": 0.8, "text_overlay": 0.5},
    )  # fmt: skip
    assert rejection_reasons(a, APPAREL) == [
        "low_resolution", "blurry", "small_object", "placeholder", "non_compliant", "text_overlay"
    ]  # fmt: skip


def test_passing_and_absent_scores_do_not_reject():
    passing = image("a", 0, size=(400, 400), scores={"blur": 0.49}, compliance={"nsfw": 0.1})
    assert rejection_reasons(passing, APPAREL) == []
    assert rejection_reasons(image("b", 1, scores={}), APPAREL) == []
    assert rejection_reasons(image("c", 2, compliance={"weapons": 0.5}), APPAREL) == ["non_compliant"]
    assert rejection_reasons(image("d", 3, size=(450, 450)), CATALOG.get("television")) == ["low_resolution"]


def test_each_reason_has_exactly_one_check_in_verdict_order():
    reasons = [reason for reason, _check in REJECTION_CHECKS]
    assert reasons == ["low_resolution", "blurry", "small_object", "placeholder", "non_compliant", "text_overlay"]
    assert len({check for _reason, check in REJECTION_CHECKS}) == len(REJECTION_CHECKS)


@pytest.mark.parametrize(
    ("check", "score", "threshold"),
    [
        (is_blurry, "blur", APPAREL.quality.blur_max),
        (is_small_object, "small_object", APPAREL.quality.small_object_max),
    ],
)
def test_score_checks_fire_at_their_threshold_and_only_when_the_score_ran(check, score, threshold):
    assert check(image("at", 0, scores={score: threshold}), APPAREL)
    assert not check(image("below", 1, scores={score: threshold - 1e-6}), APPAREL)
    assert not check(image("absent", 2, scores={}), APPAREL)


@pytest.mark.parametrize(
    ("check", "name"),
    [(is_non_compliant, "nsfw"), (is_non_compliant, "weapons"), (has_text_overlay, "text_overlay")],
)
def test_compliance_checks_fire_at_the_categorys_threshold_with_the_checks_reason(check, name):
    threshold = APPAREL.compliance.threshold(name)
    assert check(image("at", 0, compliance={name: threshold}), APPAREL)
    assert not check(image("below", 1, compliance={name: threshold - 1e-6}), APPAREL)
    assert not check(image("absent", 2), APPAREL)
    other = has_text_overlay if check is is_non_compliant else is_non_compliant
    assert not other(image("at", 0, compliance={name: 1.0}), APPAREL)


def test_low_resolution_is_the_shorter_side_below_min_side():
    side = APPAREL.min_side
    assert is_low_resolution(image("short", 0, size=(side * 3, side - 1)), APPAREL)
    assert not is_low_resolution(image("exact", 1, size=(side, side)), APPAREL)
