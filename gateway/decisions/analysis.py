"""What the decisions work on and produce: one input image's analysis, and its verdict in the response."""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.reasons import ERROR_REASONS, SCORE_NAMES, Status
from gateway.decisions.compliance import ComplianceHit
from gateway.decisions.hero import HeroCheck
from gateway.decisions.placeholders import PlaceholderEvidence, VoteOutcome
from gateway.decisions.variant import VariantCheck
from gateway.hashing import ImageHashes

UNKNOWN_TYPE = "unknown"


@dataclass(frozen=True)
class LibraryMatch:
    """The image's pHash is within `distance` bits of the known placeholder `library_id`."""

    library_id: str
    distance: int


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
    scores: dict[str, float] = field(default_factory=dict)  # quality scores (SCORE_NAMES), only the checks that ran
    compliance: dict[str, float] = field(default_factory=dict)  # compliance checks' scores by check, those served
    type: str = UNKNOWN_TYPE  # UNKNOWN_TYPE when the category has no trained head
    type_confidence: float | None = None
    type_probabilities: dict[str, float] | None = None  # the type head's output by type; None without a head
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
        if set(self.compliance) & set(SCORE_NAMES):
            raise ValueError(f"image {self.id!r}: compliance checks named like quality scores")


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
    scores: dict[str, float]  # quality and compliance scores by name
    placeholder: PlaceholderEvidence | None = None
    vote: VoteOutcome | None = None
    compliance: list[ComplianceHit] = field(default_factory=list)  # the compliance checks that fired
    variant: VariantCheck | None = None  # accepted images checked against the product's own variant
    hero_margin: HeroCheck | None = None  # accepted images of the hero type checked against the category's hero margin
