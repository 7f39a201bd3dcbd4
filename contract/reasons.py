"""Every reason code the API can put in an image's `reasons` (or an index item's `reason`), with its meaning, and the
statuses and score names of the HTTP contract. README's "Reason codes" table names the one function that decides
each code."""

from __future__ import annotations

from typing import Literal

Status = Literal["selected", "rejected", "duplicate", "error"]
STATUSES: tuple[str, ...] = ("selected", "rejected", "duplicate", "error")

# Rejections: the image was analysed and is unfit for the page (status `rejected`).
LOW_RESOLUTION = "low_resolution"
BLURRY = "blurry"
SMALL_OBJECT = "small_object"
PLACEHOLDER = "placeholder"
NON_COMPLIANT = "non_compliant"
TEXT_OVERLAY = "text_overlay"
OVER_LIMIT = "over_limit"

# Errors: the image never reached analysis, or analysis could not read it (status `error`).
UNDECODABLE = "undecodable"
FETCH_FAILED = "fetch_failed"
FETCH_BLOCKED = "fetch_blocked"
TOO_LARGE = "too_large"
UNSUPPORTED_FORMAT = "unsupported_format"

# Visual-search indexing only: no category given and none could be predicted.
CATEGORY_UNKNOWN = "category_unknown"

MEANINGS: dict[str, str] = {
    LOW_RESOLUTION: "shorter side below the category's min_side",
    BLURRY: "learned blur score at or above the category's blur threshold",
    SMALL_OBJECT: "the product fills too little of the frame (lost in whitespace)",
    PLACEHOLDER: "a 'no image' placeholder: library match, learned score, or the category vote",
    NON_COMPLIANT: "adult, violent or offensive content: a compliance check's score at its threshold",
    TEXT_OVERLAY: "overlaid marketing text, badges or watermarks: a compliance check's score at its threshold",
    OVER_LIMIT: "passed every check but did not fit under max_images",
    UNDECODABLE: "empty, not an image, invalid base64, an unreadable header, or the decoder could not read it",
    FETCH_FAILED: "the URL could not be fetched (network error, HTTP error, timeout, too many redirects)",
    FETCH_BLOCKED: "the URL is not http(s) or resolves to a non-public address",
    TOO_LARGE: "over the per-image byte limit, or over the pixel or side limit read from the header",
    UNSUPPORTED_FORMAT: "a recognised format the decoder does not support (GIF, HEIF/AVIF, SVG, PDF)",
    CATEGORY_UNKNOWN: "index item with no category given and no category head to predict one",
}

REJECTION_REASONS = frozenset(
    {LOW_RESOLUTION, BLURRY, SMALL_OBJECT, PLACEHOLDER, NON_COMPLIANT, TEXT_OVERLAY, OVER_LIMIT}
)
# Per-image failures before analysis.
ERROR_REASONS = frozenset({UNDECODABLE, FETCH_FAILED, FETCH_BLOCKED, TOO_LARGE, UNSUPPORTED_FORMAT})

# The reasons a compliance check (a trained head of the vision model, categories.toml [compliance]) may carry.
COMPLIANCE_REASONS = frozenset({NON_COMPLIANT, TEXT_OVERLAY})
# Quality scores an image may carry (only checks that ran), each in [0, 1], higher = worse, 0.5 at the threshold.
# Compliance checks add their own scores under their names (`nsfw`, `weapons`, ...), on the same scale.
SCORE_NAMES = ("blur", "small_object", "placeholder")
