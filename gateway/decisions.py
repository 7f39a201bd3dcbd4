"""Image-selection decisions: reject, de-duplicate, order, cap. Pure functions over plain data (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from contract.categories import Category, CategoryHead, DedupThresholds
from contract.reasons import (
    BLURRY,
    ERROR_REASONS,
    LOW_RESOLUTION,
    NON_COMPLIANT,
    OVER_LIMIT,
    PLACEHOLDER,
    SCORE_NAMES,
    SMALL_OBJECT,
    Status,
)
from gateway.catalog_dedup import HashVectors, duplicate_matrix
from gateway.hashing import ImageHashes

UNKNOWN_TYPE = "unknown"

# Stand-in blur score for an image whose blur check did not run: mid-scale, i.e. no evidence either way. Accepted
# images that were measured score below blur_max (0.5 by default), so a measured sharp image outranks an unmeasured
# one of the same size, which is the safer bet.
NEUTRAL_BLUR_SCORE = 0.5


@dataclass(frozen=True)
class LibraryMatch:
    """The image's pHash is within `distance` bits of the known placeholder `library_id`."""

    library_id: str
    distance: int


@dataclass(frozen=True)
class VoteRule:
    """The category vote for unseen placeholders: the image meets the `exemplars` most recently accepted images of
    its category (one per product); each exemplar whose cosine similarity to the image (backbone embeddings) is
    below the similarity threshold votes "unlike"; `min_votes` unlike votes call a placeholder. With fewer than
    `exemplars` exemplars the vote abstains.

    When the learned placeholder score ran, the vote rejects only together with a score >= `head_min` (a real product
    unlike the category's recent ones is rare but exists, and the head then vouches for it) at `min_similarity`;
    without a score it stands alone at the stricter `min_similarity_alone`. Defaults chosen on data (BENCHMARKS.md)."""

    exemplars: int = 11
    min_votes: int = 5
    min_similarity: float = 0.16
    head_min: float = 0.02
    min_similarity_alone: float = 0.13

    def __post_init__(self) -> None:
        if self.exemplars < 1 or not 1 <= self.min_votes <= self.exemplars:
            raise ValueError(f"vote rule needs 1 <= min_votes <= exemplars, got {self.min_votes} of {self.exemplars}")


@dataclass(frozen=True)
class VoteOutcome:
    """`outcome`: `placeholder` (>= min_votes unlike), `product`, or `abstained` (too few exemplars yet)."""

    outcome: Literal["placeholder", "product", "abstained"]
    unlike: int  # exemplars that voted "unlike" (0 when abstained)
    exemplars: int  # exemplars available to the vote (<= rule.exemplars)
    needed: int  # rule.exemplars
    similarity: float  # the threshold applied
    head_min: float | None  # the placeholder score the vote needs to reject (None: the head did not run)

    @property
    def fired(self) -> bool:
        return self.outcome == "placeholder"


def exemplar_vote(similarities: Sequence[float], rule: VoteRule, head_ran: bool = True) -> VoteOutcome:
    """The vote over an image's cosine similarities to its category's exemplars (most recent first; only the first
    `rule.exemplars` are used). `head_ran`: the learned placeholder score is there to gate the vote."""
    used = list(similarities)[: rule.exemplars]
    threshold = rule.min_similarity if head_ran else rule.min_similarity_alone
    head_min = rule.head_min if head_ran else None
    if len(used) < rule.exemplars:
        return VoteOutcome("abstained", 0, len(used), rule.exemplars, threshold, head_min)
    unlike = sum(1 for s in used if s < threshold)
    outcome = "placeholder" if unlike >= rule.min_votes else "product"
    return VoteOutcome(outcome, unlike, len(used), rule.exemplars, threshold, head_min)


@dataclass(frozen=True)
class PlaceholderEvidence:
    """Which mechanism called an image a placeholder: `library` (known placeholder matched by pHash), `head`
    (the learned placeholder score reached its threshold) or `vote` (unlike the category's accepted images, with
    the head's score at least the vote's `head_min`)."""

    mechanism: str
    library_id: str | None = None
    distance: int | None = None
    score: float | None = None
    votes: int | None = None  # vote: exemplars that voted "unlike"
    exemplars: int | None = None  # vote: exemplars consulted


@dataclass(kw_only=True)
class ImageAnalysis:
    """What the gateway knows about one input image after Triton."""

    id: str
    supplier: str | None
    index: int  # position in the request
    ok: bool
    error_reason: str | None = None  # one of ERROR_REASONS when not ok
    width: int = 0
    height: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # only the checks that ran
    type: str = UNKNOWN_TYPE  # UNKNOWN_TYPE when the category has no trained head
    type_confidence: float | None = None
    hashes: ImageHashes | None = None  # None: never treated as anyone's duplicate
    supplier_priority: int | None = None  # lower is preferred; None = no preference
    library_match: LibraryMatch | None = None  # nearest known placeholder within the match distance
    vote: VoteOutcome | None = None  # the category vote; None when it did not run

    def __post_init__(self) -> None:
        if self.ok and self.error_reason is not None:
            raise ValueError(f"image {self.id!r}: ok images carry no error_reason")
        if not self.ok and self.error_reason not in ERROR_REASONS:
            raise ValueError(f"image {self.id!r}: error_reason must be one of {sorted(ERROR_REASONS)}")
        unknown_scores = set(self.scores) - set(SCORE_NAMES)
        if unknown_scores:
            raise ValueError(f"image {self.id!r}: unknown scores {sorted(unknown_scores)}")


@dataclass
class Verdict:
    """The response entry for one input image."""

    id: str
    supplier: str | None
    status: Status
    position: int | None  # 1-based place in the selection, only when selected
    type: str
    type_confidence: float | None
    reasons: list[str]
    duplicate_of: str | None
    width: int
    height: int
    scores: dict[str, float]
    placeholder: PlaceholderEvidence | None = None
    vote: VoteOutcome | None = None


def placeholder_evidence(a: ImageAnalysis, category: Category) -> PlaceholderEvidence | None:
    """First mechanism that fires, strongest evidence first: a library match (an exact known picture), the learned
    head's score at its threshold, then the category vote (gated by the head's score when the head ran)."""
    if a.library_match is not None:
        return PlaceholderEvidence("library", library_id=a.library_match.library_id, distance=a.library_match.distance)
    score = a.scores.get("placeholder")
    if score is not None and score >= category.quality.placeholder_max:
        return PlaceholderEvidence("head", score=score)
    if a.vote is not None and a.vote.fired and (a.vote.head_min is None or (score or 0.0) >= a.vote.head_min):
        return PlaceholderEvidence("vote", score=score, votes=a.vote.unlike, exemplars=a.vote.exemplars)
    return None


def rejection_reasons(a: ImageAnalysis, category: Category) -> list[str]:
    """Reason codes for which `a` is unfit for the page; only checks whose score is present can reject."""
    q = category.quality
    reasons = []
    if min(a.width, a.height) < category.min_side:
        reasons.append(LOW_RESOLUTION)
    for score_name, threshold, reason in (
        ("blur", q.blur_max, BLURRY),
        ("small_object", q.small_object_max, SMALL_OBJECT),
    ):
        if a.scores.get(score_name, float("-inf")) >= threshold:
            reasons.append(reason)
    if placeholder_evidence(a, category) is not None:
        reasons.append(PLACEHOLDER)
    if a.scores.get("nsfw", float("-inf")) >= q.nsfw_max or a.scores.get("violence", float("-inf")) >= q.violence_max:
        reasons.append(NON_COMPLIANT)
    return reasons


def _blur_or_neutral(a: ImageAnalysis) -> float:
    return a.scores.get("blur", NEUTRAL_BLUR_SCORE)


def _supplier_rank(a: ImageAnalysis) -> tuple[bool, int]:
    return a.supplier_priority is None, a.supplier_priority or 0


def representative_key(a: ImageAnalysis) -> tuple[int, float, tuple[bool, int], int]:
    """Sort key, best first: largest area, then sharpest, then preferred supplier (None last), then input order."""
    return -a.width * a.height, _blur_or_neutral(a), _supplier_rank(a), a.index


def _quality_key(a: ImageAnalysis) -> tuple[float, int, tuple[bool, int], int]:
    return _blur_or_neutral(a), -a.width * a.height, _supplier_rank(a), a.index


def cluster_duplicates(items: list[ImageAnalysis], t: DedupThresholds) -> list[list[ImageAnalysis]]:
    """Leader clustering, best image first; cluster[0] is the representative.

    Images are visited in representative_key order; each joins the cluster of the first leader it duplicates,
    otherwise it leads a new cluster. Members are compared with leaders only, never with each other: chaining
    A~B~C would let near-duplicate steps (a slowly turning product, crops drifting along) merge two images that
    do not look alike, silently dropping a distinct view, and losing a view costs more than keeping a duplicate.
    """
    ranked = sorted(items, key=representative_key)
    hashed = [a for a in ranked if a.hashes is not None]
    # Same rule as gateway.hashing.duplicate_matrix, with the chi-square only on pairs both hashes accept (fast at 200).
    duplicates = duplicate_matrix(HashVectors.from_hashes([a.hashes for a in hashed]), t)
    row_of = {id(a): row for row, a in enumerate(hashed)}

    clusters: list[list[ImageAnalysis]] = []
    leader_rows: list[int] = []
    leader_cluster: list[int] = []
    for a in ranked:
        row = row_of.get(id(a))
        if row is None:
            clusters.append([a])
            continue
        if leader_rows:
            matches = duplicates[row, leader_rows]
            if matches.any():
                clusters[leader_cluster[int(matches.argmax())]].append(a)
                continue
        leader_rows.append(row)
        leader_cluster.append(len(clusters))
        clusters.append([a])
    return clusters


def order_selection(representatives: list[ImageAnalysis], category: Category) -> list[ImageAnalysis]:
    """Page order: the best image of each type in priority order (hero first), then the other images of each type
    in priority order, then images of an unknown or foreign type. Without any known type (no trained head),
    sharpest first."""
    known_types = set(category.types)
    if not any(a.type in known_types for a in representatives):
        return sorted(representatives, key=_quality_key)
    by_type = {
        image_type: sorted((a for a in representatives if a.type == image_type), key=representative_key)
        for image_type in category.priority
    }
    firsts = [group[0] for group in by_type.values() if group]
    extras = [a for group in by_type.values() for a in group[1:]]
    others = sorted((a for a in representatives if a.type not in known_types), key=representative_key)
    return firsts + extras + others


def _verdict(
    a: ImageAnalysis,
    status: Status,
    *,
    position: int | None = None,
    reasons: list[str] | None = None,
    duplicate_of: str | None = None,
    placeholder: PlaceholderEvidence | None = None,
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
        scores=dict(a.scores),
        placeholder=placeholder,
        vote=a.vote,
    )


def select(
    analyses: list[ImageAnalysis], category: Category, max_images: int | None = None
) -> tuple[list[str], list[Verdict]]:
    """(selected ids in page order, one verdict per input image in input order)."""
    cap = category.max_images if max_images is None else max_images
    if cap < 0:
        raise ValueError(f"max_images must be >= 0, got {cap}")

    verdicts: dict[int, Verdict] = {}  # keyed by id() of the analysis: ids are not trusted to be unique here
    candidates_by_type: dict[str, list[ImageAnalysis]] = {}
    for a in analyses:
        if not a.ok:
            verdicts[id(a)] = _verdict(a, "error", reasons=[a.error_reason])
        elif reasons := rejection_reasons(a, category):
            verdicts[id(a)] = _verdict(a, "rejected", reasons=reasons, placeholder=placeholder_evidence(a, category))
        else:
            candidates_by_type.setdefault(a.type, []).append(a)

    # Clustering per type: a front and a back shot of a plain product can hash alike, yet both belong on the page.
    representatives = []
    for candidates in candidates_by_type.values():
        for cluster in cluster_duplicates(candidates, category.dedup):
            representative = cluster[0]
            representatives.append(representative)
            for duplicate in cluster[1:]:
                verdicts[id(duplicate)] = _verdict(duplicate, "duplicate", duplicate_of=representative.id)

    ordered = order_selection(representatives, category)
    selected, over_limit = ordered[:cap], ordered[cap:]
    for position, a in enumerate(selected, start=1):
        verdicts[id(a)] = _verdict(a, "selected", position=position)
    for a in over_limit:
        verdicts[id(a)] = _verdict(a, "rejected", reasons=[OVER_LIMIT])
    return [a.id for a in selected], [verdicts[id(a)] for a in sorted(analyses, key=lambda a: a.index)]


def dedup_groups(analyses: list[ImageAnalysis], t: DedupThresholds) -> list[list[str]]:
    """Duplicate groups for POST /v1/dedup: every id exactly once, no type or quality filtering.

    Groups are ordered by their earliest input; inside a group the representative comes first, then the others in
    input order. Error images are singletons.
    """
    clusters = cluster_duplicates([a for a in analyses if a.ok], t)
    clusters += [[a] for a in analyses if not a.ok]
    clusters.sort(key=lambda cluster: min(a.index for a in cluster))
    return [[cluster[0].id] + [a.id for a in sorted(cluster[1:], key=lambda a: a.index)] for cluster in clusters]


@dataclass(frozen=True)
class CategoryPrediction:
    """The top-level category head's verdict on one request: `top_class` wins the mean of the images'
    probabilities; `category` is its route when `confidence` reaches the head's floor (`trusted`), else None."""

    top_class: str
    confidence: float
    trusted: bool
    category: str | None
    probabilities: dict[str, float]
    images: int  # images the mean was taken over


def predict_category(probabilities: Sequence[np.ndarray], head: CategoryHead) -> CategoryPrediction | None:
    """Mean of the per-image class probabilities (one product: its images vote together, so one odd close-up does
    not decide), routed through `head.routes`; None when there is no image to predict from."""
    if not len(probabilities):
        return None
    mean = np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities]), axis=0)
    if mean.shape != (len(head.classes),):
        raise ValueError(f"category head gave {mean.shape[-1]} probabilities for {len(head.classes)} classes")
    best = int(np.argmax(mean))
    top_class, confidence = head.classes[best], float(mean[best])
    trusted = confidence >= head.min_confidence
    return CategoryPrediction(
        top_class=top_class,
        confidence=confidence,
        trusted=trusted,
        category=head.routes[top_class] if trusted else None,
        probabilities={cls: float(p) for cls, p in zip(head.classes, mean)},
        images=len(probabilities),
    )


@dataclass(frozen=True)
class SearchPlan:
    """Which partitions a visual-search query searches and what it reports as its category."""

    category: str | None
    source: Literal["request", "predicted", "none"]
    partitions: tuple[str, ...]


def partition_name(category: str | None) -> str | None:
    """A caller's top-level category as a partition key (lower-case, trimmed); None when absent or blank."""
    return category.strip().lower() if category and category.strip() else None


def search_partitions(
    requested: str | None,
    probabilities: dict[str, float] | None,
    available: Sequence[str],
    cascade: bool,
    top_categories: int,
) -> SearchPlan:
    """The category cascade. A requested category: that partition only. Otherwise, with the head's probabilities and
    `cascade`, the `top_categories` most likely partitions among those that hold images (an empty partition is
    skipped, not searched); without cascade (the flat baseline) or without a head, every available partition, most
    likely first when the head ran. `category` is the head's top class either way."""
    name = partition_name(requested)
    if name is not None:
        return SearchPlan(name, "request", (name,))
    ranked = sorted(probabilities, key=lambda c: -probabilities[c]) if probabilities else []
    top = ranked[0] if ranked else None
    present = [c for c in ranked if c in set(available)]
    if cascade and ranked:
        return SearchPlan(top, "predicted", tuple(present[:top_categories]))
    everything = present + sorted(set(available) - set(ranked))
    return SearchPlan(top, "predicted" if top else "none", tuple(everything))
