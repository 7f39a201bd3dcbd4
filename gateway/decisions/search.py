"""Visual search by category partition: which partition a catalog image is indexed in, and which partitions a query
searches (the category cascade)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.categories import CategoryHead
from gateway.decisions.category import predict_category


def search_vector(embedding: np.ndarray | None, search_embedding: np.ndarray | None) -> np.ndarray | None:
    """The vector the search index stores and queries with: the search head's SEARCH_EMBEDDING (a retrieval
    embedding), or EMBEDDING where the vision model has no search head (an older model repository; /readyz says which).
    Both are L2-normalised and EMBEDDING_DIM wide. An index must hold one kind only: rebuild it when this changes."""
    return embedding if search_embedding is None else search_embedding


def partition_name(category: str | None) -> str | None:
    """A caller's top-level category as a partition key (lower-case, trimmed); None when absent or blank."""
    return category.strip().lower() if category and category.strip() else None


def partition_allowed(name: str | None, head: CategoryHead | None) -> bool:
    """With a head, a caller's partition must be one of its classes (else the cascade could never reach it)."""
    return head is None or name is None or name in head.classes


@dataclass(frozen=True)
class IndexPlacement:
    partition: str
    source: Literal["request", "predicted"]


def index_placements(
    product_ids: Sequence[str],
    requested: Sequence[str | None],
    probabilities: Sequence[np.ndarray | None],
    head: CategoryHead | None,
) -> list[IndexPlacement | None]:
    """Per catalog image (parallel sequences): the partition the caller gave (already a partition_name); else the
    head's top class over the mean of the probabilities of all the product's images in the request that give none
    (so one odd close-up does not split a product); None when neither exists (`category_unknown`)."""
    votes: dict[str, list[np.ndarray]] = {}
    for product_id, name, probs in zip(product_ids, requested, probabilities):
        if name is None and probs is not None:
            votes.setdefault(product_id, []).append(probs)
    predicted = {} if head is None else {p: predict_category(v, head).top_class for p, v in votes.items()}
    placements: list[IndexPlacement | None] = []
    for product_id, name in zip(product_ids, requested):
        if name is not None:
            placements.append(IndexPlacement(name, "request"))
        elif product_id in predicted:
            placements.append(IndexPlacement(predicted[product_id], "predicted"))
        else:
            placements.append(None)
    return placements


@dataclass(frozen=True)
class SearchPlan:
    """Which partitions a visual-search query searches and what it reports as its category."""

    category: str | None
    source: Literal["request", "predicted", "none"]
    partitions: tuple[str, ...]


# The cascade's default: search the next most likely partition until 90% of the category head's probability is
# covered. A principle, not a value tuned on the evaluation's queries; measured there (BENCHMARKS.md "cascade"),
# it keeps flat recall at a fraction of flat's work, where a fixed top-1 misses the 5.7% of photos it misroutes.
DEFAULT_SEARCH_CONFIDENCE = 0.9


def search_partitions(
    requested: str | None,
    probabilities: dict[str, float] | None,
    available: Sequence[str],
    cascade: bool,
    top_categories: int,
    min_confidence: float | None = None,
) -> SearchPlan:
    """The category cascade. A requested category: that partition only. Otherwise, with the head's probabilities and
    `cascade`, the `top_categories` most likely partitions among those that hold images (an empty partition is
    skipped, not searched), then, with `min_confidence`, the next most likely ones until the searched partitions hold
    that much of the head's probability (an unsure head searches more, a sure one stays in one partition); without
    cascade (the flat baseline) or without a head, every available partition, most likely first when the head ran.
    `category` is the head's top class either way."""
    name = partition_name(requested)
    if name is not None:
        return SearchPlan(name, "request", (name,))
    ranked = sorted(probabilities, key=lambda c: -probabilities[c]) if probabilities else []
    top = ranked[0] if ranked else None
    present = [c for c in ranked if c in set(available)]
    if cascade and ranked:
        chosen = present[:top_categories]
        covered = sum(probabilities[c] for c in chosen)
        for partition in present[top_categories:]:
            if min_confidence is None or covered >= min_confidence:
                break
            chosen.append(partition)
            covered += probabilities[partition]
        return SearchPlan(top, "predicted", tuple(chosen))
    everything = present + sorted(set(available) - set(ranked))
    return SearchPlan(top, "predicted" if top else "none", tuple(everything))
