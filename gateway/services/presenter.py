"""Domain results (verdicts, category choice, placements, hits) as the HTTP API's response models."""

from __future__ import annotations

from dataclasses import asdict

from gateway.decisions.analysis import Verdict
from gateway.decisions.category import CategoryPrediction
from gateway.schemas import (
    CategoryPredictionOut,
    ComplianceCheckOut,
    HeroMarginOut,
    ImageVerdictOut,
    IndexedOut,
    IndexFailedOut,
    IndexResponse,
    PlaceholderEvidenceOut,
    PlaceholderList,
    PlaceholderOut,
    PlaceholdersAdded,
    PlaceholderVoteOut,
    SearchHitOut,
    SearchResponse,
    SelectResponse,
    VariantOut,
)
from gateway.services.curation import Curation
from gateway.services.placeholders import AddedPlaceholders
from gateway.services.search import IndexOutcome, SearchOutcome
from gateway.stores.interfaces import Placeholder

DECIMALS = 4  # scores, confidences and similarities in responses


def verdict_out(v: Verdict) -> ImageVerdictOut:
    return ImageVerdictOut(
        id=v.id,
        supplier=v.supplier,
        status=v.status,
        position=v.position,
        type=v.type,
        type_confidence=v.type_confidence,
        reasons=v.reasons,
        duplicate_of=v.duplicate_of,
        width=v.width or None,  # 0: never measured (an error image)
        height=v.height or None,
        scores={name: round(score, DECIMALS) for name, score in v.scores.items()},
        compliance=[
            ComplianceCheckOut(check=h.check, reason=h.reason, score=round(h.score, DECIMALS), threshold=h.threshold)
            for h in v.compliance
        ],
        placeholder=None if v.placeholder is None else PlaceholderEvidenceOut(**asdict(v.placeholder)),
        placeholder_vote=None if v.vote is None else PlaceholderVoteOut(**asdict(v.vote)),
        variant=None
        if v.variant is None
        else VariantOut(
            consistent=v.variant.consistent,
            distance=round(v.variant.distance, DECIMALS),
            threshold=v.variant.threshold,
            colour_share=None if v.variant.colour_share is None else round(v.variant.colour_share, DECIMALS),
        ),
        hero_margin=None
        if v.hero_margin is None
        else HeroMarginOut(
            cleared=v.hero_margin.cleared,
            margin=round(v.hero_margin.margin, DECIMALS),
            threshold=v.hero_margin.threshold,
            rival=v.hero_margin.rival,
        ),
    )


def prediction_out(prediction: CategoryPrediction | None) -> CategoryPredictionOut | None:
    return None if prediction is None else CategoryPredictionOut(**asdict(prediction))


def select_response(curation: Curation) -> SelectResponse:
    return SelectResponse(
        product_id=curation.product_id,
        category=curation.choice.category.name,
        category_source=curation.choice.source,
        category_prediction=prediction_out(curation.choice.prediction),
        colour_terms=None if curation.colours is None else sorted(curation.colours),
        selected=curation.selected,
        images=[verdict_out(v) for v in curation.verdicts],
    )


def placeholders_added(result: AddedPlaceholders) -> PlaceholdersAdded:
    return PlaceholdersAdded(
        added=result.added, failed=[{"id": image_id, "reason": reason} for image_id, reason in result.failed]
    )


def placeholder_out(entry: Placeholder) -> PlaceholderOut:
    return PlaceholderOut(
        id=entry.id,
        phash=f"{entry.phash:016x}",
        whole_phash=None if entry.whole_phash is None else f"{entry.whole_phash:016x}",
        width=entry.width,
        height=entry.height,
        supplier=entry.supplier,
        added_at=entry.added_at,
    )


def placeholder_list(entries: list[Placeholder]) -> PlaceholderList:
    return PlaceholderList(placeholders=[placeholder_out(e) for e in entries])


def index_response(outcome: IndexOutcome) -> IndexResponse:
    return IndexResponse(
        indexed=[
            IndexedOut(
                image_id=i.image_id,
                product_id=i.product_id,
                category=i.placement.partition,
                category_source=i.placement.source,
            )
            for i in outcome.indexed
        ],
        failed=[IndexFailedOut(image_id=image_id, reason=reason) for image_id, reason in outcome.failed],
    )


def search_response(outcome: SearchOutcome) -> SearchResponse:
    probabilities = outcome.probabilities
    return SearchResponse(
        category=outcome.plan.category,
        category_source=outcome.plan.source,
        searched=list(outcome.plan.partitions),
        probabilities=None if probabilities is None else {c: round(p, DECIMALS) for c, p in probabilities.items()},
        results=[
            SearchHitOut(
                product_id=h.product_id, image_id=h.image_id, score=round(h.score, DECIMALS), category=h.partition
            )
            for h in outcome.hits
        ],
    )
