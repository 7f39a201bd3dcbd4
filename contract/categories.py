"""Product categories: the pure parser of `categories.toml` (the single source of truth for the gateway's routing and
ordering and for training). No file I/O here: `contract.categories_file` reads the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from contract.reasons import COMPLIANCE_REASONS, NON_COMPLIANT
from contract.tensors import CATEGORY_HEAD_MODEL, TYPE_HEAD_PREFIX

DEFAULT_CATEGORY = "default"

_WORD = re.compile(r"[a-z][a-z0-9_]*")
_CATEGORY_FIELDS = frozenset(
    {
        "types",
        "priority",
        "head",
        "top_level",
        "max_images",
        "min_side",
        "dedup",
        "quality",
        "compliance",
        "variant",
        "hero",
        "placeholder_vote",
    }
)
_DEDUP_FIELDS = ("phash_max_distance", "dhash_edge_max_distance", "hsv_chi2_max")
# absent: the tone rescue and the framing rescue are off
_DEDUP_OPTIONAL = {"tone_chi2_max": 0.0, "tone_residual_max": 0.0, "framing_min_share": 0.0}
_QUALITY_FIELDS = ("blur_max", "small_object_max", "placeholder_max")
_VARIANT_FIELDS = ("max_distance", "min_images")
_HERO_FIELDS = ("rival", "min_margin")
_PLACEHOLDER_VOTE_FIELDS = ("min_similarity",)
DEFAULT_COMPLIANCE_MAX = "default_max"  # [<cat>.compliance] key for every check without its own threshold
_HASH_BITS = 64


class CategoryConfigError(ValueError):
    """An invalid categories file; the message names the category and field."""


@dataclass(frozen=True)
class DedupThresholds:
    phash_max_distance: int
    dhash_edge_max_distance: int
    hsv_chi2_max: float
    # The tone rescue of the colour signal (gateway.hashing.tone): a pair whose histograms differ by at most
    # `tone_chi2_max` still agrees in colour when one global tone map makes its two tone thumbnails agree within
    # `tone_residual_max` grey levels in every block (a brightness / contrast re-export). 0 / 0: off.
    tone_chi2_max: float = 0.0
    tone_residual_max: float = 0.0
    # The framing rescue (gateway.hashing.framing): a pair the rule rejects is compared again on the window one picture
    # fills in the other (a crop or pad copy) when that window is at least `framing_min_share` of the larger picture
    # on each axis. 0: off.
    framing_min_share: float = 0.0


@dataclass(frozen=True)
class VariantThresholds:
    """The own-variant check (gateway/decisions/variant.py): an accepted image whose colour-histogram chi-square to
    the product's consensus image exceeds `max_distance` is inconsistent (another colourway, say); the check runs
    on products with at least `min_images` accepted images (fewer only when supplier priorities or the request's
    named colour single one out)."""

    max_distance: float
    min_images: int


@dataclass(frozen=True)
class HeroMargin:
    """The hero margin (gateway/decisions/hero.py): an image of the category's hero type (the first type of
    `priority`) may lead the page only when its type head's probability of that type exceeds its probability of
    `rival` by at least `min_margin`; when no image of the hero type clears it, the one with the largest margin
    still leads."""

    rival: str
    min_margin: float


@dataclass(frozen=True)
class QualityThresholds:
    """A score at or above its threshold rejects the image."""

    blur_max: float
    small_object_max: float
    placeholder_max: float


@dataclass(frozen=True)
class ComplianceThresholds:
    """The compliance checks (trained heads of the vision model, each scoring 0.5 at the operating point chosen when
    it was trained): a score at or above its check's threshold rejects the image with the check's reason.
    `reasons` comes from the file's top-level [compliance] table; a served check it does not list is `non_compliant`."""

    default_max: float
    by_check: dict[str, float]
    reasons: dict[str, str]

    def threshold(self, check: str) -> float:
        return self.by_check.get(check, self.default_max)

    def reason(self, check: str) -> str:
        return self.reasons.get(check, NON_COMPLIANT)


@dataclass(frozen=True)
class CategoryHead:
    """The top-level category head: its output classes (in order), the category each class routes to, and the
    confidence floor below which a prediction is not trusted (the request falls back to `default`)."""

    classes: tuple[str, ...]
    routes: dict[str, str]
    min_confidence: float
    model: str = CATEGORY_HEAD_MODEL


@dataclass(frozen=True)
class Category:
    name: str
    types: tuple[str, ...]
    priority: tuple[str, ...]
    head: str
    top_level: str
    max_images: int
    min_side: int
    dedup: DedupThresholds
    quality: QualityThresholds
    compliance: ComplianceThresholds
    variant: VariantThresholds | None = None  # None: no [variant] table, the check does not run
    hero: HeroMargin | None = None  # None: no [hero] table, any image of the hero type may lead
    # The category vote's similarity (gated by the placeholder score) where this category has its own
    # ([<cat>.placeholder_vote] min_similarity); None: the service-wide one (gateway.decisions.placeholders.VoteRule)
    placeholder_vote_similarity: float | None = None

    @property
    def hero_type(self) -> str:
        """The type that leads the page when present (the first of `priority`)."""
        return self.priority[0]


class Catalog:
    """All categories of one file, in file order; lookups are case-insensitive."""

    def __init__(self, categories: list[Category], category_head: CategoryHead | None = None) -> None:
        self._by_name = {category.name: category for category in categories}
        if DEFAULT_CATEGORY not in self._by_name:
            raise CategoryConfigError(f"categories: the {DEFAULT_CATEGORY!r} category is required")
        if category_head is not None:
            for cls, target in category_head.routes.items():
                if target not in self._by_name:
                    raise CategoryConfigError(
                        f"category_head, field 'routes.{cls}': {target!r} is not a category of this file"
                    )
        self.category_head = category_head  # None: no [category_head] table, nothing is ever predicted

    @property
    def default(self) -> Category:
        return self._by_name[DEFAULT_CATEGORY]

    def get(self, name: str) -> Category:
        """The named category; KeyError when it does not exist."""
        try:
            return self._by_name[name.strip().lower()]
        except KeyError:
            raise KeyError(f"unknown category {name!r}") from None

    def resolve(self, name: str | None) -> tuple[Category, bool]:
        """(category, True) for a known name, else (the default category, False)."""
        if name is not None:
            category = self._by_name.get(name.strip().lower())
            if category is not None:
                return category, True
        return self.default, False

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def heads(self) -> tuple[str, ...]:
        """Triton model names of the type heads, one per category, in file order."""
        return tuple(category.head for category in self._by_name.values())


def parse_catalog(document: dict[str, Any]) -> Catalog:
    """Build a Catalog from an already parsed TOML document; CategoryConfigError names the category and field."""
    unknown = set(document) - {"defaults", "categories", "category_head", "compliance"}
    if unknown:
        raise CategoryConfigError(f"categories: unknown top-level keys {sorted(unknown)}")
    defaults = _table(document.get("defaults", {}), "defaults", "defaults")
    _reject_unknown(defaults, _CATEGORY_FIELDS, "defaults")
    tables = _table(document.get("categories", {}), "categories", "categories")
    head = document.get("category_head")
    reasons = _compliance_reasons(_table(document.get("compliance", {}), "compliance", "compliance"))
    return Catalog(
        [_parse_category(name, _table(table, "categories", name), defaults, reasons) for name, table in tables.items()],
        None if head is None else _parse_category_head(_table(head, "categories", "category_head")),
    )


def _unique_words(value: Any, where: str, field: str) -> tuple[str, ...]:
    words = _words(value, where, field)
    if len(set(words)) != len(words):
        raise CategoryConfigError(f"{where}, field {field!r}: duplicate {field} in {list(words)}")
    return words


def _parse_category_head(table: dict[str, Any]) -> CategoryHead:
    where = "category_head"
    _reject_unknown(table, ("classes", "routes", "min_confidence"), where)
    for key in ("classes", "routes", "min_confidence"):
        if key not in table:
            raise CategoryConfigError(f"{where}, field {key!r}: missing")
    classes = _unique_words(table["classes"], where, "classes")
    routes = _table(table["routes"], where, "routes")
    if set(routes) != set(classes):
        missing, extra = sorted(set(classes) - set(routes)), sorted(set(routes) - set(classes))
        raise CategoryConfigError(
            f"{where}, field 'routes': must map every class exactly once (missing {missing}, not a class {extra})"
        )
    for cls, target in routes.items():
        if not isinstance(target, str) or not _WORD.fullmatch(target):
            raise CategoryConfigError(f"{where}, field 'routes.{cls}': must be a category name, got {target!r}")
    return CategoryHead(
        classes=classes,
        routes={cls: routes[cls] for cls in classes},
        min_confidence=_number(table["min_confidence"], where, "min_confidence", 0.0, 1.0),
    )


def _compliance_reasons(table: dict[str, Any]) -> dict[str, str]:
    """[compliance] reasons = { check = reason }: the reason each named check's rejection carries."""
    _reject_unknown(table, ("reasons",), "compliance")
    reasons = _table(table.get("reasons", {}), "compliance", "reasons")
    for check, reason in reasons.items():
        if not _WORD.fullmatch(check):
            raise CategoryConfigError(f"compliance, field 'reasons.{check}': a check name must be a lower-case word")
        if reason not in COMPLIANCE_REASONS:
            raise CategoryConfigError(
                f"compliance, field 'reasons.{check}': must be one of {sorted(COMPLIANCE_REASONS)}, got {reason!r}"
            )
    return dict(reasons)


def _parse_compliance(defaults: dict, table: dict, where: str, reasons: dict[str, str]) -> ComplianceThresholds:
    """[defaults.compliance] merged with [<cat>.compliance]: `default_max` and any `<check> = threshold`."""
    merged = {**_table(defaults.get("compliance", {}), "defaults", "compliance")}
    merged.update(_table(table.get("compliance", {}), where, "compliance"))
    if DEFAULT_COMPLIANCE_MAX not in merged:
        raise CategoryConfigError(f"{where}, field 'compliance.{DEFAULT_COMPLIANCE_MAX}': missing")
    values = {}
    for check, value in merged.items():
        if not _WORD.fullmatch(check):
            raise CategoryConfigError(f"{where}, field 'compliance.{check}': a check name must be a lower-case word")
        values[check] = _number(value, where, f"compliance.{check}", 0.0, 1.0)
    default_max = values.pop(DEFAULT_COMPLIANCE_MAX)
    return ComplianceThresholds(default_max=default_max, by_check=values, reasons=reasons)


def _parse_category(name: str, table: dict[str, Any], defaults: dict[str, Any], reasons: dict[str, str]) -> Category:
    where = f"category {name!r}"
    if not _WORD.fullmatch(name):
        raise CategoryConfigError(f"{where}, field 'name': must be a lower-case word")
    _reject_unknown(table, _CATEGORY_FIELDS, where)
    merged = {**defaults, **table}
    missing = sorted({"types", "priority", "head", "top_level", "max_images", "min_side"} - set(merged))
    if missing:
        raise CategoryConfigError(f"{where}, field {missing[0]!r}: missing (and no value in [defaults])")

    types = _unique_words(merged["types"], where, "types")
    priority = _words(merged["priority"], where, "priority")
    if sorted(priority) != sorted(types):
        raise CategoryConfigError(
            f"{where}, field 'priority': must be a permutation of types {list(types)}, got {list(priority)}"
        )
    head = merged["head"]
    if head != f"{TYPE_HEAD_PREFIX}{name}":
        raise CategoryConfigError(f"{where}, field 'head': must be '{TYPE_HEAD_PREFIX}{name}', got {head!r}")
    top_level = merged["top_level"]
    if not isinstance(top_level, str) or not top_level:
        raise CategoryConfigError(f"{where}, field 'top_level': must be a non-empty string")

    dedup = _merge_table(defaults, table, "dedup", _DEDUP_FIELDS, where, _DEDUP_OPTIONAL)
    quality = _merge_table(defaults, table, "quality", _QUALITY_FIELDS, where)
    return Category(
        name=name,
        types=types,
        priority=priority,
        head=head,
        top_level=top_level,
        max_images=_integer(merged["max_images"], where, "max_images", minimum=1),
        min_side=_integer(merged["min_side"], where, "min_side", minimum=0),
        dedup=DedupThresholds(
            phash_max_distance=_integer(dedup["phash_max_distance"], where, "dedup.phash_max_distance", 0, _HASH_BITS),
            dhash_edge_max_distance=_integer(
                dedup["dhash_edge_max_distance"], where, "dedup.dhash_edge_max_distance", 0, _HASH_BITS
            ),
            # Chi-square of two normalised histograms (with the 0.5 factor) lies in [0, 1].
            hsv_chi2_max=_number(dedup["hsv_chi2_max"], where, "dedup.hsv_chi2_max", 0.0, 1.0),
            tone_chi2_max=_number(dedup["tone_chi2_max"], where, "dedup.tone_chi2_max", 0.0, 1.0),
            tone_residual_max=_number(dedup["tone_residual_max"], where, "dedup.tone_residual_max", 0.0, 255.0),
            framing_min_share=_number(dedup["framing_min_share"], where, "dedup.framing_min_share", 0.0, 1.0),
        ),
        quality=QualityThresholds(
            **{field: _number(quality[field], where, f"quality.{field}") for field in _QUALITY_FIELDS}
        ),
        compliance=_parse_compliance(defaults, table, where, reasons),
        variant=_parse_variant(defaults, table, where),
        hero=_parse_hero(defaults, table, where, types, priority[0]),
        placeholder_vote_similarity=_parse_placeholder_vote(defaults, table, where),
    )


def _parse_placeholder_vote(defaults: dict[str, Any], table: dict[str, Any], where: str) -> float | None:
    if "placeholder_vote" not in defaults and "placeholder_vote" not in table:
        return None
    vote = _merge_table(defaults, table, "placeholder_vote", _PLACEHOLDER_VOTE_FIELDS, where)
    # A cosine similarity of two L2-normalised embeddings.
    return _number(vote["min_similarity"], where, "placeholder_vote.min_similarity", -1.0, 1.0)


def _parse_hero(
    defaults: dict[str, Any], table: dict[str, Any], where: str, types: tuple[str, ...], hero_type: str
) -> HeroMargin | None:
    if "hero" not in defaults and "hero" not in table:
        return None
    hero = _merge_table(defaults, table, "hero", _HERO_FIELDS, where)
    rival = hero["rival"]
    if rival not in types or rival == hero_type:
        raise CategoryConfigError(
            f"{where}, field 'hero.rival': must be a type of this category other than the hero type "
            f"{hero_type!r}, got {rival!r}"
        )
    # A difference of two probabilities: in [-1, 1]; below 0 a rival may even outscore the hero type.
    return HeroMargin(rival=rival, min_margin=_number(hero["min_margin"], where, "hero.min_margin", -1.0, 1.0))


def _parse_variant(defaults: dict[str, Any], table: dict[str, Any], where: str) -> VariantThresholds | None:
    if "variant" not in defaults and "variant" not in table:
        return None
    variant = _merge_table(defaults, table, "variant", _VARIANT_FIELDS, where)
    return VariantThresholds(
        # Chi-square of two normalised histograms (with the 0.5 factor) lies in [0, 1].
        max_distance=_number(variant["max_distance"], where, "variant.max_distance", 0.0, 1.0),
        min_images=_integer(variant["min_images"], where, "variant.min_images", minimum=2),
    )


def _merge_table(
    defaults: dict[str, Any],
    table: dict[str, Any],
    key: str,
    fields: tuple[str, ...],
    where: str,
    optional: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """[defaults.<key>] overridden field by field by the category's [<cat>.<key>]; every field of `fields` must end
    up set, a field of `optional` falls back to its value there."""
    optional = optional or {}
    known = (*fields, *optional)
    base = _table(defaults.get(key, {}), "defaults", key)
    override = _table(table.get(key, {}), where, key)
    _reject_unknown(base, known, f"defaults.{key}")
    _reject_unknown(override, known, f"{where}, table {key!r}")
    merged = {**optional, **base, **override}
    missing = [field for field in fields if field not in merged]
    if missing:
        raise CategoryConfigError(f"{where}, field '{key}.{missing[0]}': missing (and no value in [defaults.{key}])")
    return merged


def _table(value: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CategoryConfigError(f"{where}, field {field!r}: must be a table")
    return value


def _reject_unknown(table: dict[str, Any], allowed: frozenset[str] | tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise CategoryConfigError(f"{where}, field {unknown[0]!r}: unknown key (allowed: {sorted(allowed)})")


def _words(value: Any, where: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise CategoryConfigError(f"{where}, field {field!r}: must be a non-empty list of lower-case words")
    for word in value:
        if not isinstance(word, str) or not _WORD.fullmatch(word):
            raise CategoryConfigError(f"{where}, field {field!r}: {word!r} is not a lower-case word")
    return tuple(value)


def _integer(value: Any, where: str, field: str, minimum: int, maximum: int | None = None) -> int:
    # bool is an int subclass; `true` in TOML is a typo here, not 1.
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise CategoryConfigError(f"{where}, field {field!r}: must be an integer {bounds}, got {value!r}")
    return value


def _number(value: Any, where: str, field: str, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CategoryConfigError(f"{where}, field {field!r}: must be a number, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise CategoryConfigError(f"{where}, field {field!r}: must be in [{minimum}, {maximum}], got {value!r}")
    return float(value)
