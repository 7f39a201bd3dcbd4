"""The hero margin: which image of the hero type leads the page (a narrow front call only when nothing clears the
margin), the verdict's evidence, and that nothing changes without a [hero] table."""

from __future__ import annotations

import dataclasses

from contract.categories import HeroMargin
from gateway.decisions.hero import HeroCheck, hero_checks, hero_key
from gateway.decisions.selection import order_selection, select
from gateway.decisions.variant import VariantCheck
from tests.gateway.decisions.factories import APPAREL, ids, image

RULE = HeroMargin(rival="back", min_margin=0.4)
CATEGORY = dataclasses.replace(APPAREL, hero=RULE, variant=None)
NO_MARGIN = dataclasses.replace(APPAREL, hero=None, variant=None)


def called(front: float, back: float) -> dict[str, float]:
    rest = (1.0 - front - back) / 3
    return {"front": front, "back": back, "side": rest, "detail": rest, "lifestyle": rest}


def test_a_narrow_front_call_with_the_larger_resolution_no_longer_leads():
    # the classic error: a back shot called front (margin 0.2) is the largest image, so it led the page
    narrow = image("back-called-front", 0, type="front", size=(2000, 2000), probabilities=called(0.55, 0.35))
    sure = image("front", 1, type="front", size=(1000, 1000), probabilities=called(0.9, 0.05))
    detail = image("detail", 2, type="detail", probabilities=called(0.1, 0.1))
    assert ids(order_selection([narrow, sure, detail], NO_MARGIN)) == ["back-called-front", "detail", "front"]
    images = [narrow, sure, detail]
    heroes = hero_checks(images, CATEGORY)
    assert ids(order_selection(images, CATEGORY, heroes=heroes)) == ["front", "detail", "back-called-front"]


def test_among_fronts_that_clear_the_margin_quality_still_decides():
    big = image("big", 1, type="front", size=(2000, 2000), probabilities=called(0.6, 0.1))  # margin 0.5 >= 0.4
    surest = image("surest", 0, type="front", size=(800, 800), probabilities=called(0.99, 0.0))
    heroes = hero_checks([surest, big], CATEGORY)
    assert all(check.cleared for check in heroes.values())
    assert ids(order_selection([surest, big], CATEGORY, heroes=heroes)) == ["big", "surest"]


def test_when_no_front_clears_the_margin_the_largest_margin_leads_and_nothing_is_lost():
    a = image("a", 0, type="front", size=(2000, 2000), probabilities=called(0.5, 0.4))  # margin 0.1
    b = image("b", 1, type="front", size=(1000, 1000), probabilities=called(0.6, 0.3))  # margin 0.3
    back = image("back", 2, type="back", probabilities=called(0.1, 0.85))
    selected, verdicts = select([a, b, back], CATEGORY)
    assert selected == ["b", "back", "a"]  # a front still leads: never a back, never an empty hero
    evidence = {v.id: v.hero_margin for v in verdicts}
    assert evidence["back"] is None  # only images of the hero type carry the check
    assert evidence["b"] == HeroCheck(cleared=False, margin=evidence["b"].margin, threshold=0.4, rival="back")
    assert abs(evidence["b"].margin - 0.3) < 1e-9 and abs(evidence["a"].margin - 0.1) < 1e-9


def test_a_lone_front_below_the_margin_still_leads_before_other_types():
    lone = image("lone", 1, type="front", probabilities=called(0.45, 0.35))
    back = image("back", 0, type="back", size=(3000, 3000), probabilities=called(0.05, 0.9))
    selected, verdicts = select([back, lone], CATEGORY)
    assert selected == ["lone", "back"]
    assert verdicts[1].hero_margin is not None and verdicts[1].hero_margin.cleared is False


def test_the_variant_check_still_comes_first():
    # another colourway's confident front must not overtake the product's own narrow front
    own = image("own", 0, type="front", probabilities=called(0.5, 0.3))
    other = image("other", 1, type="front", probabilities=called(0.95, 0.0))
    variants = {id(own): VariantCheck(True, 0.01, 0.5), id(other): VariantCheck(False, 0.9, 0.5)}
    heroes = hero_checks([own, other], CATEGORY)
    assert ids(order_selection([own, other], CATEGORY, variants, heroes)) == ["own", "other"]


def test_without_a_hero_table_or_probabilities_there_is_no_check():
    a = image("a", 0, type="front", probabilities=called(0.5, 0.4))
    plain = image("plain", 1, type="front")  # no probabilities (an evaluation's manifest types): counts as cleared
    assert hero_checks([a, plain], NO_MARGIN) == {}
    assert list(hero_checks([a, plain], CATEGORY)) == [id(a)]
    assert hero_key(None) == (False, 0.0)
    _, verdicts = select([a, plain], NO_MARGIN)
    assert all(v.hero_margin is None for v in verdicts)
