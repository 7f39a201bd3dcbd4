"""Placeholder rules: the category vote, which mechanism calls an image a placeholder, and which images may teach or
sway the category-level signals (the exemplar store, the category prediction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from contract.categories import Category

if TYPE_CHECKING:  # analysis.py holds these fields' types, so it imports this module at run time
    from gateway.decisions.analysis import ImageAnalysis, Verdict


@dataclass(frozen=True)
class VoteRule:
    """The category vote for unseen placeholders: the image meets the `exemplars` most recently accepted images of
    its category (one per product); each exemplar whose cosine similarity to the image (backbone embeddings) is
    below the similarity threshold votes "unlike"; `min_votes` unlike votes call a placeholder. A category with fewer
    exemplars yet (cold start) votes on the n it has once n reaches `min_exemplars`, with the same share of unlike
    votes (ceil(n * min_votes / exemplars): 3 of 6, 4 of 8); below that the vote abstains.

    When the learned placeholder score ran, the vote rejects only together with a score >= `head_min` (a real product
    unlike the category's recent ones is rare but exists, and the head then vouches for it) at `min_similarity`;
    without a score it stands alone at the stricter `min_similarity_alone`. Defaults chosen on data (BENCHMARKS.md)."""

    exemplars: int = 11
    min_votes: int = 5
    min_similarity: float = 0.16
    head_min: float = 0.02
    min_similarity_alone: float = 0.13
    # The cold-start quorum (never above `exemplars`): at 6 exemplars and 3 unlike votes the gated vote flags no photo
    # of the development set either (BENCHMARKS.md "Cold start: the vote from 6 exemplars").
    min_exemplars: int = 6

    def __post_init__(self) -> None:
        if self.exemplars < 1 or not 1 <= self.min_votes <= self.exemplars:
            raise ValueError(f"vote rule needs 1 <= min_votes <= exemplars, got {self.min_votes} of {self.exemplars}")
        if self.min_exemplars < 1:
            raise ValueError(f"vote rule needs min_exemplars >= 1, got {self.min_exemplars}")

    @property
    def quorum(self) -> int:
        """Exemplars the vote needs before it runs."""
        return min(self.min_exemplars, self.exemplars)

    def votes_needed(self, available: int) -> int:
        """Unlike votes that call a placeholder among `available` (quorum..exemplars) exemplars: min_votes' share."""
        return -(-available * self.min_votes // self.exemplars)

    def in_category(self, category: Category) -> VoteRule:
        """The rule for images of `category`: its own similarity for the gated vote where categories.toml gives one
        ([<cat>.placeholder_vote]: a category whose photos are alike among themselves can hold placeholders to a
        stricter likeness than the service-wide value, which the most varied category decides)."""
        if category.placeholder_vote_similarity is None:
            return self
        return replace(self, min_similarity=category.placeholder_vote_similarity)


@dataclass(frozen=True)
class LibraryRule:
    """When a library match (pHash within `max_distance` bits of a known placeholder) calls an image a placeholder:
    within `alone_distance` bits on its own; further out only with the learned placeholder score, where it ran, at
    least `head_min` (the vote's gate: the head vouches). Real product photos do come within 16 bits of some
    platforms' placeholders (3 of 1,072 development photos against 28 placeholders, all at exactly 16, none nearer;
    head scores ~0.0002), while re-served placeholder variants keep scores far above the gate (BENCHMARKS.md)."""

    max_distance: int = 16
    alone_distance: int = 12
    head_min: float = VoteRule.head_min

    def __post_init__(self) -> None:
        if not 0 <= self.alone_distance <= self.max_distance:
            raise ValueError(f"library rule needs 0 <= alone_distance <= max_distance, got {self}")

    def stands(self, distance, score):
        """Whether a match at `distance` bits calls a placeholder, given the learned score (None: it did not run).
        Scalars or numpy arrays alike (the evaluations apply the same rule to whole columns)."""
        within = distance <= self.max_distance
        if score is None:
            return within
        return within & ((distance <= self.alone_distance) | (score >= self.head_min))


@dataclass(frozen=True)
class VoteOutcome:
    """`outcome`: `placeholder` (>= min_votes unlike), `product`, or `abstained` (too few exemplars yet)."""

    outcome: Literal["placeholder", "product", "abstained"]
    unlike: int  # exemplars that voted "unlike" (0 when abstained)
    exemplars: int  # exemplars available to the vote (<= rule.exemplars)
    needed: int  # exemplars the vote needs to run (rule.quorum)
    similarity: float  # the threshold applied
    head_min: float | None  # the placeholder score the vote needs to reject (None: the head did not run)
    votes_needed: int  # unlike votes that call a placeholder at this many exemplars (0 when abstained)

    @property
    def fired(self) -> bool:
        return self.outcome == "placeholder"


def exemplar_vote(similarities: Sequence[float], rule: VoteRule, head_ran: bool = True) -> VoteOutcome:
    """The vote over an image's cosine similarities to its category's exemplars (most recent first; only the first
    `rule.exemplars` are used). `head_ran`: the learned placeholder score is there to gate the vote."""
    used = list(similarities)[: rule.exemplars]
    threshold = rule.min_similarity if head_ran else rule.min_similarity_alone
    head_min = rule.head_min if head_ran else None
    if len(used) < rule.quorum:
        return VoteOutcome("abstained", 0, len(used), rule.quorum, threshold, head_min, 0)
    unlike = sum(1 for s in used if s < threshold)
    votes_needed = rule.votes_needed(len(used))
    outcome = "placeholder" if unlike >= votes_needed else "product"
    return VoteOutcome(outcome, unlike, len(used), rule.quorum, threshold, head_min, votes_needed)


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


def category_vote(a: ImageAnalysis, embedding: np.ndarray, exemplars: np.ndarray, rule: VoteRule) -> VoteOutcome:
    """The vote on one image: cosine similarities of its (L2-normalised) embedding to the category's exemplars, most
    recent first, gated by the learned placeholder score when that check ran for the image."""
    # As Python floats: compared one by one, numpy scalars cost ~10x more (and compare the same way, in float64).
    similarities = (exemplars @ embedding).tolist() if len(exemplars) else []
    return exemplar_vote(similarities, rule, head_ran="placeholder" in a.scores)


def exemplar_feed(verdicts: Sequence[Verdict], max_placeholder_score: float) -> list[str]:
    """Ids of the images that feed the category's exemplar store, in page order: this product's confidently good
    images, i.e. selected, with no placeholder evidence, the vote not against them, and the placeholder score (when
    it ran) below `max_placeholder_score` (a doubtful image would teach the vote that placeholders are normal)."""
    selected = sorted((v for v in verdicts if v.status == "selected"), key=lambda v: v.position)
    return [
        v.id
        for v in selected
        if v.placeholder is None
        and not (v.vote is not None and v.vote.fired)
        and v.scores.get("placeholder", 0.0) < max_placeholder_score
    ]


def counts_toward_category(a: ImageAnalysis, default: Category) -> bool:
    """Whether the image's category-head output joins the product's category prediction: not a known placeholder and
    not called one by the learned head (placeholders are unlike every category and would only blur the mean). The
    category is not known yet, so the `default` category's placeholder threshold applies."""
    return a.library_match is None and a.scores.get("placeholder", 0.0) < default.quality.placeholder_max
