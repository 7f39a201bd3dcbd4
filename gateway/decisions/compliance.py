"""Compliance: which of an image's compliance checks fired. A check is a trained head of the vision model
(`python -m training.compliance_head`) whose score is 0.5 at the operating point chosen on its held-out data; the
category's threshold for it (categories.toml [<cat>.compliance], default_max otherwise) decides, and the check's reason
(`non_compliant` for adult, violent or offensive content, `text_overlay` for overlaid marketing text, badges and
watermarks; categories.toml [compliance] reasons) is what the verdict carries, with the check and its score. A check
that was not served has no score and never rejects."""

from __future__ import annotations

from dataclasses import dataclass

from contract.categories import Category


@dataclass(frozen=True)
class ComplianceHit:
    """One compliance check that fired: its name, the reason it carries, its score and the threshold it reached."""

    check: str
    reason: str
    score: float
    threshold: float


def compliance_hits(scores: dict[str, float], category: Category) -> list[ComplianceHit]:
    """Every check whose score is at or above the category's threshold, the highest score first (ties by name)."""
    rules = category.compliance
    hits = [
        ComplianceHit(check, rules.reason(check), score, rules.threshold(check))
        for check, score in scores.items()
        if score >= rules.threshold(check)
    ]
    return sorted(hits, key=lambda hit: (-hit.score, hit.check))


def fired_reasons(scores: dict[str, float], category: Category) -> set[str]:
    return {hit.reason for hit in compliance_hits(scores, category)}
