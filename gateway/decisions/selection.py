"""The product page: reject, de-duplicate per type, check each image against the product's own variant, order by the
category's type priority, cap."""

from __future__ import annotations

from contract.categories import Category
from contract.reasons import OVER_LIMIT, Status
from gateway.decisions.analysis import ImageAnalysis, Verdict
from gateway.decisions.compliance import ComplianceHit, compliance_hits
from gateway.decisions.duplicates import DuplicatePairs
from gateway.decisions.hero import HeroCheck, hero_checks, hero_key
from gateway.decisions.placeholders import PlaceholderEvidence, placeholder_evidence
from gateway.decisions.quality import rejection_reasons
from gateway.decisions.ranking import representative_key, sharpness_key
from gateway.decisions.variant import VariantCheck, closeness_key, inconsistency_key, variant_checks


def order_selection(
    representatives: list[ImageAnalysis],
    category: Category,
    variants: dict[int, VariantCheck] | None = None,
    heroes: dict[int, HeroCheck] | None = None,
) -> list[ImageAnalysis]:
    """Page order: the best image of each type in priority order (hero first), then the other images of each type
    in priority order, then images of an unknown or foreign type. Without any known type (no trained head), the
    sharp images in the suppliers' order, then the rest sharpest first (decisions.ranking.sharpness_key), the
    images the own-variant check calls inconsistent after the others. With types, the own-variant check
    (`variants`, by id()) reorders inside that: within a type the images closest to the product's colour come
    first (decisions.variant.closeness_key), and among the best images of the types, those inconsistent with the
    product go after the consistent ones, so the hero is consistent whenever any image is. The hero margin
    (`heroes`, by id()) reorders the images of the hero type: among the consistent ones (and among the
    inconsistent ones), those that clear the margin first, then the others by margin (decisions.hero.hero_key),
    so a narrow call leads only when no image of the hero type clears the margin."""
    variants = variants or {}
    heroes = heroes or {}

    def closest_first(images: list[ImageAnalysis]) -> list[ImageAnalysis]:
        return sorted(images, key=lambda a: closeness_key(variants.get(id(a))))  # stable: equals keep their order

    def margin_first(images: list[ImageAnalysis]) -> list[ImageAnalysis]:
        def key(a: ImageAnalysis) -> tuple:
            inconsistent, step = closeness_key(variants.get(id(a)))
            return inconsistent, hero_key(heroes.get(id(a))), step

        return sorted(images, key=key)

    def consistent_first(images: list[ImageAnalysis]) -> list[ImageAnalysis]:
        return sorted(images, key=lambda a: inconsistency_key(variants.get(id(a))))  # stable: equals keep their order

    known_types = set(category.types)
    if not any(a.type in known_types for a in representatives):
        # Views of every kind share the page here, and differ in colour by nature (a box's front and its back): only
        # the own-variant check's verdict moves an image (inconsistent ones after), not its distance.
        return consistent_first(sorted(representatives, key=sharpness_key))
    by_type = {
        image_type: (margin_first if image_type == category.hero_type else closest_first)(
            sorted((a for a in representatives if a.type == image_type), key=representative_key)
        )
        for image_type in category.priority
    }
    firsts = consistent_first([group[0] for group in by_type.values() if group])
    extras = [a for group in by_type.values() for a in group[1:]]
    others = closest_first(sorted((a for a in representatives if a.type not in known_types), key=representative_key))
    return firsts + extras + others


def page_cap(category: Category, max_images: int | None) -> int:
    """The request's `max_images`, else the category's."""
    cap = category.max_images if max_images is None else max_images
    if cap < 0:
        raise ValueError(f"max_images must be >= 0, got {cap}")
    return cap


def split_at_cap(ordered: list[ImageAnalysis], cap: int) -> tuple[list[ImageAnalysis], list[ImageAnalysis]]:
    """(selected, over the limit): the images past the cap get `over_limit`."""
    return ordered[:cap], ordered[cap:]


def _verdict(
    a: ImageAnalysis,
    status: Status,
    *,
    position: int | None = None,
    reasons: list[str] | None = None,
    duplicate_of: str | None = None,
    placeholder: PlaceholderEvidence | None = None,
    compliance: list[ComplianceHit] | None = None,
    variant: VariantCheck | None = None,
    hero: HeroCheck | None = None,
) -> Verdict:
    return Verdict(
        id=a.id,
        supplier=a.supplier,
        status=status,
        position=position,
        type=a.type,
        type_confidence=a.type_confidence,
        reasons=reasons or [],
        duplicate_of=duplicate_of,
        width=a.width,
        height=a.height,
        scores={**a.scores, **a.compliance},
        placeholder=placeholder,
        vote=a.vote,
        compliance=compliance or [],
        variant=variant,
        hero_margin=hero,
    )


def select(
    analyses: list[ImageAnalysis],
    category: Category,
    max_images: int | None = None,
    colours: frozenset[str] = frozenset(),
) -> tuple[list[str], list[Verdict]]:
    """(selected ids in page order, one verdict per input image in input order). `colours`: the basic colour terms
    of the product's colour where the request names it (contract.colours.colour_terms), for the own-variant check."""
    cap = page_cap(category, max_images)

    verdicts: dict[int, Verdict] = {}  # keyed by id() of the analysis: ids are not trusted to be unique here
    candidates_by_type: dict[str, list[ImageAnalysis]] = {}
    for a in analyses:
        if not a.ok:
            verdicts[id(a)] = _verdict(a, "error", reasons=[a.error_reason])
        elif reasons := rejection_reasons(a, category):
            verdicts[id(a)] = _verdict(
                a,
                "rejected",
                reasons=reasons,
                placeholder=placeholder_evidence(a, category),
                compliance=compliance_hits(a.compliance, category),
            )
        else:
            candidates_by_type.setdefault(a.type, []).append(a)

    # Clustering per type: a front and a back shot of a plain product can hash alike, yet both belong on the page.
    pairs = DuplicatePairs(
        [a for candidates in candidates_by_type.values() for a in candidates], category.dedup, group=lambda a: a.type
    )
    representatives = []
    for candidates in candidates_by_type.values():
        for cluster in pairs.clusters(candidates):
            representative = cluster[0]
            representatives.append(representative)
            for duplicate in cluster[1:]:
                verdicts[id(duplicate)] = _verdict(duplicate, "duplicate", duplicate_of=representative.id)

    variants = variant_checks(representatives, category.variant, colours)
    heroes = hero_checks(representatives, category)
    selected, over_limit = split_at_cap(order_selection(representatives, category, variants, heroes), cap)
    for position, a in enumerate(selected, start=1):
        verdicts[id(a)] = _verdict(
            a, "selected", position=position, variant=variants.get(id(a)), hero=heroes.get(id(a))
        )
    for a in over_limit:
        verdicts[id(a)] = _verdict(
            a, "rejected", reasons=[OVER_LIMIT], variant=variants.get(id(a)), hero=heroes.get(id(a))
        )
    return [a.id for a in selected], [verdicts[id(a)] for a in sorted(analyses, key=lambda a: a.index)]
