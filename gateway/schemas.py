"""Request and response models of the HTTP API (the contract in DESIGN.md; fields may be added, never renamed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.colours import MAX_COLOUR_NAME
from contract.reasons import Status
from gateway.decisions.search import DEFAULT_SEARCH_CONFIDENCE


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256, description="caller's id, unique within the request")
    url: str | None = Field(default=None, max_length=4096, description="http(s) URL of the encoded image")
    data: str | None = Field(default=None, description="base64 of the encoded file")
    supplier: str | None = Field(default=None, max_length=256)
    supplier_priority: int | None = Field(
        default=None,
        description="lower is preferred: when duplicates tie on resolution and quality, and as a heavier weight in the "
        "product's consensus colour (the own-variant check)",
    )

    @model_validator(mode="after")
    def exactly_one_source(self) -> ImageIn:
        check_image_source(self.url, self.data)
        return self


def check_image_source(url: str | None, data: str | None) -> None:
    """Every image in the API (product, catalog, search query) comes from exactly one http(s) URL or base64 body."""
    if (url is None) == (data is None):
        raise ValueError("give exactly one of `url` or `data`")
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise ValueError("`url` must be an http:// or https:// URL")


def require_unique(values: list, ids: list[str], what: str) -> list:
    """`values` unchanged when `ids` has no repeats; else a validation error naming the first repeated id."""
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise ValueError(f"duplicate {what} {identifier!r}")
        seen.add(identifier)
    return values


class ImagesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[ImageIn] = Field(min_length=1)

    @field_validator("images")
    @classmethod
    def ids_unique(cls, images: list[ImageIn]) -> list[ImageIn]:
        return require_unique(images, [image.id for image in images], "image id")


class SelectRequest(ImagesRequest):
    product_id: str = Field(min_length=1, max_length=256)
    category: str | None = Field(
        default=None, max_length=64, description="category key; predicted (or `default`) when absent or unknown"
    )
    max_images: int | None = Field(default=None, ge=1, le=100)
    colour: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_COLOUR_NAME,
        description="the product's colour as the catalog names it ('navy', 'Space Gray', 'black/white'): the "
        "own-variant check then prefers images that show it, so another colourway's front sent by a supplier does "
        "not lead the page; words outside the vocabulary (contract/colours.py) are ignored",
    )

    @field_validator("colour")
    @classmethod
    def colour_has_a_word(cls, colour: str | None) -> str | None:
        if colour is not None and not colour.strip():
            raise ValueError("`colour` is blank: leave it out, or name the colour")
        return colour


class PlaceholderEvidenceOut(BaseModel):
    mechanism: Literal["library", "head", "vote"] = Field(
        description="library: pHash match of a known placeholder; head: the learned placeholder score; vote: unlike "
        "the category's recently accepted images (with the head's score at least the vote's gate)"
    )
    library_id: str | None = None
    distance: int | None = Field(default=None, description="pHash Hamming distance to the library image")
    score: float | None = None
    votes: int | None = Field(default=None, description="vote: exemplars that voted 'unlike'")
    exemplars: int | None = Field(default=None, description="vote: exemplars consulted")


class PlaceholderVoteOut(BaseModel):
    outcome: Literal["placeholder", "product", "abstained"] = Field(
        description="abstained: the category has fewer accepted exemplars than the vote needs (cold start)"
    )
    unlike: int = Field(description="exemplars whose similarity is below `similarity`")
    exemplars: int = Field(description="exemplars available (from distinct other products)")
    needed: int = Field(description="exemplars the vote needs to run (fewer: abstained)")
    similarity: float = Field(description="cosine-similarity threshold applied")
    head_min: float | None = Field(
        description="placeholder score the vote needs to reject; null: the head did not run, the vote stands alone"
    )
    votes_needed: int = Field(
        description="unlike votes that call a placeholder at this many exemplars (the same share as 5 of 11); 0 when "
        "abstained"
    )


class ComplianceCheckOut(BaseModel):
    check: str = Field(description="the compliance check that fired (a trained head: nsfw, weapons, ...)")
    reason: Literal["non_compliant", "text_overlay"] = Field(description="the reason code it added to `reasons`")
    score: float = Field(description="its score (0.5 at the operating point chosen when it was trained)")
    threshold: float = Field(description="the category's threshold it reached (categories.toml)")


class VariantOut(BaseModel):
    consistent: bool = Field(
        description="false: the image's colour is unlike the product's consensus (another colourway, a swatch); it "
        "is ordered after the consistent images of its type, never rejected for it"
    )
    distance: float = Field(description="colour-histogram chi-square to the product's consensus image")
    threshold: float = Field(description="the category's variant.max_distance (categories.toml)")
    colour_share: float | None = Field(
        default=None,
        description="share of the image's foreground in the request's `colour` (its basic terms); an image with "
        "far less of it than the product's best image, and a histogram not close to the consensus, is "
        "inconsistent (gateway/decisions/variant.py); absent when the colour took no part: none named or "
        "understood, no image showing enough of it, or no thumbnail for this image",
    )


class HeroMarginOut(BaseModel):
    cleared: bool = Field(
        description="true: the type head's margin for the hero type over `rival` reached the category's threshold; "
        "false: the image is ordered after the images of its type that clear it (it still leads when none does)"
    )
    margin: float = Field(description="P(hero type) - P(rival) from the category's type head")
    threshold: float = Field(description="the category's hero.min_margin (categories.toml)")
    rival: str = Field(description="the type the margin is taken over (apparel: back)")


class ImageVerdictOut(BaseModel):
    id: str
    supplier: str | None
    status: Status
    position: int | None
    type: str
    type_confidence: float | None
    reasons: list[str]
    duplicate_of: str | None
    width: int | None
    height: int | None
    scores: dict[str, float] = Field(
        description="every check that ran, in [0, 1], higher = worse, 0.5 at its default threshold: blur, "
        "small_object, placeholder, and each served compliance check under its name"
    )
    compliance: list[ComplianceCheckOut] = Field(
        default_factory=list, description="the compliance checks that fired, highest score first (rejected images)"
    )
    placeholder: PlaceholderEvidenceOut | None = Field(
        default=None, description="why the image was called a placeholder (only with reason `placeholder`)"
    )
    placeholder_vote: PlaceholderVoteOut | None = Field(
        default=None, description="the category vote on this image (absent when it did not run)"
    )
    variant: VariantOut | None = Field(
        default=None,
        description="the own-variant check on an accepted image (absent on rejected, duplicate and error images, "
        "and when the product has too few images for a consensus)",
    )
    hero_margin: HeroMarginOut | None = Field(
        default=None,
        description="the hero margin on an accepted image of the category's hero type (apparel: front); absent on "
        "other images and in categories without a [hero] table",
    )


class CategoryPredictionOut(BaseModel):
    top_class: str = Field(description="the top-level class with the highest mean probability over the images")
    confidence: float = Field(description="that mean probability")
    trusted: bool = Field(description="confidence reached the head's min_confidence (categories.toml)")
    category: str | None = Field(description="the category the class routes to; null when not trusted")
    probabilities: dict[str, float] = Field(description="mean probability of every class")
    images: int = Field(description="images the mean was taken over (decodable, not placeholders)")


class SelectResponse(BaseModel):
    product_id: str
    category: str
    category_source: Literal["request", "predicted", "default"] = Field(
        description="where `category` came from: the request, the top-level category head, or the fallback"
    )
    category_prediction: CategoryPredictionOut | None = Field(
        default=None,
        description="the top-level category head's verdict (only when the request's category was "
        "absent or unknown and the head is served)",
    )
    colour_terms: list[str] | None = Field(
        default=None,
        description="the basic colour terms the request's `colour` was read as (contract/colours.py); empty: no "
        "word was understood and the own-variant check ran without it; absent: no `colour` given",
    )
    selected: list[str]
    images: list[ImageVerdictOut]


class DedupResponse(BaseModel):
    groups: list[list[str]]


class PlaceholdersAdded(BaseModel):
    added: list[str]
    failed: list[dict[str, str]] = Field(default_factory=list, description="images not added: id and reason code")


class PlaceholderOut(BaseModel):
    id: str
    phash: str = Field(description="64-bit pHash of the content box, hex (what images are matched by)")
    whole_phash: str | None = Field(
        default=None,
        description="64-bit pHash of the whole picture, hex: the entry's second key (null: stored before it existed)",
    )
    width: int
    height: int
    supplier: str | None
    added_at: float


class PlaceholderList(BaseModel):
    placeholders: list[PlaceholderOut]


# ---------------------------------------------------------------------------------------------- visual search

_PARTITION_DESCRIPTION = (
    "top-level category (a class of the category head, e.g. `fruit`; case-insensitive); predicted when absent"
)


class IndexItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)
    image_id: str = Field(min_length=1, max_length=256, description="unique over the index; re-indexing replaces")
    category: str | None = Field(default=None, max_length=64, description=_PARTITION_DESCRIPTION)
    url: str | None = Field(default=None, max_length=4096)
    data: str | None = Field(default=None, description="base64 of the encoded file")

    @model_validator(mode="after")
    def exactly_one_source(self) -> IndexItemIn:
        check_image_source(self.url, self.data)
        return self


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[IndexItemIn] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def image_ids_unique(cls, items: list[IndexItemIn]) -> list[IndexItemIn]:
        return require_unique(items, [item.image_id for item in items], "image_id")


class IndexedOut(BaseModel):
    image_id: str
    product_id: str
    category: str = Field(description="the partition the image was stored in")
    category_source: Literal["request", "predicted"]


class IndexFailedOut(BaseModel):
    image_id: str
    reason: str = Field(description="a per-image reason code (undecodable, fetch_failed, ...) or `category_unknown`")


class IndexResponse(BaseModel):
    indexed: list[IndexedOut]
    failed: list[IndexFailedOut]


class IndexStats(BaseModel):
    partitions: dict[str, int] = Field(description="images indexed per top-level category")


class SearchImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=4096)
    data: str | None = Field(default=None, description="base64 of the encoded file")

    @model_validator(mode="after")
    def exactly_one_source(self) -> SearchImageIn:
        check_image_source(self.url, self.data)
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: SearchImageIn
    k: int = Field(default=10, ge=1, le=100)
    category: str | None = Field(default=None, max_length=64, description="search only this partition")
    cascade: bool = Field(default=True, description="false: search every partition (the flat baseline)")
    top_categories: int = Field(default=1, ge=1, le=16, description="partitions the cascade searches at least")
    min_confidence: float | None = Field(
        default=DEFAULT_SEARCH_CONFIDENCE,
        ge=0.0,
        le=1.0,
        description="the cascade adds the next most likely partitions until those searched hold this much of the "
        "category head's probability; null: exactly top_categories",
    )
    per_product: bool = Field(default=True, description="a product's best image only")


class SearchHitOut(BaseModel):
    product_id: str
    image_id: str
    score: float = Field(description="cosine similarity of the search vectors (SEARCH_EMBEDDING, else EMBEDDING)")
    category: str = Field(description="the partition the hit came from")


class SearchResponse(BaseModel):
    category: str | None = Field(description="the requested or predicted top-level category (null: none known)")
    category_source: Literal["request", "predicted", "none"]
    searched: list[str] = Field(description="partitions searched, most likely first")
    probabilities: dict[str, float] | None = Field(
        default=None, description="the category head's probabilities for the query (when it ran)"
    )
    results: list[SearchHitOut]


class Deleted(BaseModel):
    deleted: str = Field(description="the id removed")


class ProductDeleted(Deleted):
    images: int = Field(description="index entries removed with it")


class Detail(BaseModel):
    """A one-sentence error answer: 404 (no such id), 503 (inference server unavailable)."""

    detail: str


class NotReady(BaseModel):
    ready: Literal[False]
    reason: str = Field(
        description="why not: the state store unavailable, Triton unreachable (since when) or which models are "
        "missing/not ready"
    )
    last_error: str | None = Field(default=None, description="the breaker's last error while Triton is unreachable")
    models: dict[str, str] | None = Field(default=None, description="every model's state, when Triton answered")


class Ready(BaseModel):
    ready: Literal[True]
    models: dict[str, str]
    heads: list[str] = Field(
        default_factory=list,
        description="Optional outputs of the analyze ensemble that the vision model serves: CATEGORY_PROBS when the "
        "category head is trained, TYPE_PROBS_<category> for every category with a trained type head, "
        "COMPLIANCE_<check> per trained compliance head, SEARCH_EMBEDDING when the search head is trained.",
    )
    search_vector: str = Field(
        description="What the visual-search index stores and queries with: SEARCH_EMBEDDING (the retrieval "
        "embedding) or, from a vision model without the search head, EMBEDDING (rebuild the index when this changes)."
    )
