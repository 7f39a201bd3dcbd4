"""Hero margin: which image of the category's hero type (apparel: `front`) may lead the page. The commonest type error
is a back called front (issue #15); such a call is usually a narrow one, so an image of the hero type leads only when
its type head's probability of the hero type exceeds its probability of the rival type (`back`) by the category's
calibrated `min_margin` ([<category>.hero] in categories.toml). Images that do not clear it keep their type and their
place among the other images of that type, after those that clear it; when none clears it, the one with the largest
margin leads (a product never loses its hero). Never a rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contract.categories import Category

if TYPE_CHECKING:  # analysis.py holds HeroCheck in each Verdict
    from gateway.decisions.analysis import ImageAnalysis


@dataclass(frozen=True)
class HeroCheck:
    """An image of the hero type against the margin: cleared when margin >= threshold."""

    cleared: bool
    margin: float  # P(hero type) - P(rival) from the category's type head
    threshold: float  # the category's hero.min_margin
    rival: str


def hero_margin(probabilities: dict[str, float], hero_type: str, rival: str) -> float:
    return probabilities.get(hero_type, 0.0) - probabilities.get(rival, 0.0)


def hero_checks(images: list[ImageAnalysis], category: Category) -> dict[int, HeroCheck]:
    """HeroCheck by id() of each image of the hero type that carries its type head's probabilities; empty when the
    category has no [hero] table."""
    rule = category.hero
    if rule is None:
        return {}
    checks = {}
    for a in images:
        if a.type == category.hero_type and a.type_probabilities is not None:
            margin = hero_margin(a.type_probabilities, category.hero_type, rule.rival)
            checks[id(a)] = HeroCheck(margin >= rule.min_margin, margin, rule.min_margin, rule.rival)
    return checks


def hero_key(check: HeroCheck | None) -> tuple[bool, float]:
    """Sort key among images of the hero type: those that clear the margin (and unchecked ones) first, in their usual
    order; then the others, largest margin first."""
    if check is None or check.cleared:
        return False, 0.0
    return True, -check.margin
