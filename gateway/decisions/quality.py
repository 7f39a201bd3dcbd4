"""Why an analysed image is unfit for the page: one named check per rejection reason, only checks that ran can
reject (a score that is absent never rejects). `over_limit` is decided apart, by selection.split_at_cap."""

from __future__ import annotations

from contract.categories import Category
from contract.reasons import BLURRY, LOW_RESOLUTION, NON_COMPLIANT, PLACEHOLDER, SMALL_OBJECT, TEXT_OVERLAY
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.compliance import fired_reasons
from gateway.decisions.placeholders import placeholder_evidence


def _score_at_least(a: ImageAnalysis, score_name: str, threshold: float) -> bool:
    return a.scores.get(score_name, float("-inf")) >= threshold


def is_low_resolution(a: ImageAnalysis, category: Category) -> bool:
    """The shorter side is below the category's `min_side`."""
    return min(a.width, a.height) < category.min_side


def is_blurry(a: ImageAnalysis, category: Category) -> bool:
    return _score_at_least(a, "blur", category.quality.blur_max)


def is_small_object(a: ImageAnalysis, category: Category) -> bool:
    return _score_at_least(a, "small_object", category.quality.small_object_max)


def is_placeholder(a: ImageAnalysis, category: Category) -> bool:
    """Library match, learned score or category vote (placeholders.placeholder_evidence says which)."""
    return placeholder_evidence(a, category) is not None


def is_non_compliant(a: ImageAnalysis, category: Category) -> bool:
    """Adult, violent or offensive content: a compliance check with reason `non_compliant` fired (compliance.py)."""
    return NON_COMPLIANT in fired_reasons(a.compliance, category)


def has_text_overlay(a: ImageAnalysis, category: Category) -> bool:
    """Overlaid marketing text, badges or watermarks: a compliance check with reason `text_overlay` fired."""
    return TEXT_OVERLAY in fired_reasons(a.compliance, category)


# In the order the reasons are listed in a verdict.
REJECTION_CHECKS = (
    (LOW_RESOLUTION, is_low_resolution),
    (BLURRY, is_blurry),
    (SMALL_OBJECT, is_small_object),
    (PLACEHOLDER, is_placeholder),
    (NON_COMPLIANT, is_non_compliant),
    (TEXT_OVERLAY, has_text_overlay),
)


def rejection_reasons(a: ImageAnalysis, category: Category) -> list[str]:
    """Reason codes for which `a` is unfit for the page; empty when it passes every check."""
    return [reason for reason, check in REJECTION_CHECKS if check(a, category)]
