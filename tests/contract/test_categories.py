import dataclasses
from pathlib import Path

import pytest

from contract.categories import (
    Category,
    CategoryConfigError,
    ComplianceThresholds,
    DedupThresholds,
    HeroMargin,
    QualityThresholds,
    VariantThresholds,
)
from contract.categories_file import CATEGORIES_FILE_ENV, load_catalog

BASE_TOML = """
[defaults]
max_images = 8
min_side = 400

[defaults.dedup]
phash_max_distance = 10
dhash_edge_max_distance = 12
hsv_chi2_max = 0.15

[defaults.quality]
blur_max = 0.5
small_object_max = 0.5
placeholder_max = 0.5

[defaults.compliance]
default_max = 0.5

[categories.default]
types = ["front", "back"]
priority = ["front", "back"]
head = "type_default"
top_level = "general"
"""

WATCH_TOML = """
[categories.watch]
types = ["face", "side", "strap"]
priority = ["face", "strap", "side"]
head = "type_watch"
top_level = "fashion"
max_images = 5

[categories.watch.dedup]
phash_max_distance = 6

[categories.watch.quality]
blur_max = 0.2

[categories.watch.compliance]
nsfw = 0.8
"""


def write_catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "categories.toml"
    path.write_text(text)
    return path


def test_shipped_catalog_loads_and_is_consistent():
    catalog = load_catalog()
    assert {"default", "apparel", "footwear", "laptop", "grocery"} <= set(catalog.names())
    apparel = catalog.get("apparel")
    assert apparel.priority[0] == "front"
    assert set(apparel.types) == {"front", "back", "side", "detail", "lifestyle"}
    assert catalog.get("laptop").max_images == 10
    assert catalog.get("television").min_side == 500
    assert catalog.get("television").dedup == catalog.default.dedup
    assert catalog.heads() == tuple(f"type_{name}" for name in catalog.names())


def test_default_load_is_cached_and_frozen():
    catalog = load_catalog()
    assert load_catalog() is catalog
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.default.max_images = 3  # type: ignore[misc]


def test_category_overrides_defaults_field_by_field(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, BASE_TOML + WATCH_TOML))
    watch = catalog.get("watch")
    assert watch == Category(
        name="watch",
        types=("face", "side", "strap"),
        priority=("face", "strap", "side"),
        head="type_watch",
        top_level="fashion",
        max_images=5,
        min_side=400,
        dedup=DedupThresholds(phash_max_distance=6, dhash_edge_max_distance=12, hsv_chi2_max=0.15),
        quality=QualityThresholds(blur_max=0.2, small_object_max=0.5, placeholder_max=0.5),
        compliance=ComplianceThresholds(default_max=0.5, by_check={"nsfw": 0.8}, reasons={}),
    )
    assert catalog.default.max_images == 8
    assert catalog.default.dedup.phash_max_distance == 10
    assert catalog.default.dedup.framing_min_share == 0.0  # an optional key, absent: the framing rescue is off


def test_resolve_is_case_insensitive_and_falls_back_to_default(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, BASE_TOML + WATCH_TOML))
    assert catalog.resolve(" Watch ") == (catalog.get("watch"), True)
    assert catalog.resolve("WATCH")[1] is True
    assert catalog.resolve("toaster") == (catalog.default, False)
    assert catalog.resolve(None) == (catalog.default, False)
    assert catalog.resolve("default") == (catalog.default, True)
    assert catalog.names() == ("default", "watch")
    assert catalog.heads() == ("type_default", "type_watch")
    with pytest.raises(KeyError, match="toaster"):
        catalog.get("toaster")


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    path = write_catalog(tmp_path, BASE_TOML + WATCH_TOML)
    monkeypatch.setenv(CATEGORIES_FILE_ENV, str(path))
    assert load_catalog().names() == ("default", "watch")
    monkeypatch.delenv(CATEGORIES_FILE_ENV)
    assert "apparel" in load_catalog().names()


@pytest.mark.parametrize(
    ("replace", "by", "field"),
    [
        ('priority = ["face", "strap", "side"]', 'priority = ["face", "strap"]', "priority"),
        ('priority = ["face", "strap", "side"]', 'priority = ["face", "strap", "side", "side"]', "priority"),
        ('types = ["face", "side", "strap"]', 'types = ["Face", "side", "strap"]', "types"),
        ('types = ["face", "side", "strap"]', 'types = ["face", "side view", "strap"]', "types"),
        ('head = "type_watch"', 'head = "watch_head"', "head"),
        ("max_images = 5", "max_images = 0", "max_images"),
        ("max_images = 5", "max_images = 5\ncolour = 1", "colour"),
        ("phash_max_distance = 6", "phash_max_distance = 65", "dedup.phash_max_distance"),
        ("phash_max_distance = 6", "phash_max_distance = true", "dedup.phash_max_distance"),
        ("phash_max_distance = 6", "phash_max_distance = 6\nframing_min_share = 1.5", "dedup.framing_min_share"),
        ("blur_max = 0.2", 'blur_max = "low"', "quality.blur_max"),
        ("nsfw = 0.8", 'nsfw = "low"', "compliance.nsfw"),
        ('top_level = "fashion"', "", "top_level"),
    ],
)
def test_invalid_category_names_category_and_field(tmp_path, replace, by, field):
    text = BASE_TOML + WATCH_TOML
    assert replace in text
    path = write_catalog(tmp_path, text.replace(replace, by))
    with pytest.raises(CategoryConfigError, match=rf"category 'watch', field '{field}'") as error:
        load_catalog(path)
    assert isinstance(error.value, ValueError)
    assert str(path) in str(error.value)


def test_missing_default_category_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'default' category is required"):
        load_catalog(write_catalog(tmp_path, BASE_TOML.split("[categories.default]")[0] + WATCH_TOML))


def test_threshold_without_default_value_is_rejected(tmp_path):
    text = BASE_TOML.replace("hsv_chi2_max = 0.15\n", "")
    with pytest.raises(ValueError, match=r"category 'default', field 'dedup.hsv_chi2_max'"):
        load_catalog(write_catalog(tmp_path, text))


def test_compliance_thresholds_and_reasons(tmp_path):
    reasons = '[compliance]\nreasons = { badge = "text_overlay" }\n'
    catalog = load_catalog(write_catalog(tmp_path, reasons + BASE_TOML + WATCH_TOML))
    watch, default = catalog.get("watch").compliance, catalog.default.compliance
    assert (watch.threshold("nsfw"), watch.threshold("weapons"), default.threshold("nsfw")) == (0.8, 0.5, 0.5)
    assert (watch.reason("badge"), watch.reason("weapons")) == ("text_overlay", "non_compliant")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[compliance]\nreasons = { badge = "shouting" }\n', "compliance, field 'reasons.badge'"),
        ("[categories.default.compliance]\nnsfw = 1.5\n", "field 'compliance.nsfw'"),
        ("[compliance]\ncolours = 1\n", "compliance"),
    ],
    ids=["unknown-reason", "threshold-out-of-range", "unknown-key"],
)
def test_bad_compliance_tables_name_the_field(tmp_path, extra, message):
    with pytest.raises(CategoryConfigError, match=message):
        load_catalog(write_catalog(tmp_path, extra + BASE_TOML))


def test_the_shipped_file_gives_every_category_a_compliance_threshold():
    catalog = load_catalog()
    for name in catalog.names():
        assert 0.0 < catalog.get(name).compliance.default_max <= 1.0
    assert catalog.default.compliance.reason("text_overlay") == "text_overlay"


def test_variant_thresholds_are_optional_merged_and_checked(tmp_path):
    assert load_catalog(write_catalog(tmp_path, BASE_TOML)).default.variant is None  # no table: the check is off
    shipped = load_catalog().get("apparel").variant
    assert shipped is not None and 0 < shipped.max_distance <= 1 and shipped.min_images >= 2
    variant = "\n[defaults.variant]\nmax_distance = 0.4\nmin_images = 3\n"
    override = "\n[categories.watch.variant]\nmax_distance = 0.2\n"
    catalog = load_catalog(write_catalog(tmp_path, BASE_TOML + variant + WATCH_TOML + override))
    assert catalog.default.variant == VariantThresholds(max_distance=0.4, min_images=3)
    assert catalog.get("watch").variant == VariantThresholds(max_distance=0.2, min_images=3)
    bad = BASE_TOML + variant.replace("min_images = 3", "min_images = 1") + WATCH_TOML
    with pytest.raises(CategoryConfigError, match=r"category 'default', field 'variant.min_images'"):
        load_catalog(write_catalog(tmp_path, bad))


def test_hero_margin_is_optional_per_category_and_its_rival_checked(tmp_path):
    assert load_catalog(write_catalog(tmp_path, BASE_TOML)).default.hero is None  # no table: any front may lead
    catalog = load_catalog(
        write_catalog(tmp_path, BASE_TOML + '\n[categories.default.hero]\nrival = "back"\nmin_margin = 0.45\n')
    )
    assert catalog.default.hero == HeroMargin(rival="back", min_margin=0.45)
    assert catalog.default.hero_type == "front"
    for table, field in (
        ('rival = "front"\nmin_margin = 0.4', "hero.rival"),  # the hero type itself
        ('rival = "side"\nmin_margin = 0.4', "hero.rival"),  # not a type of the category
        ('rival = "back"\nmin_margin = 1.5', "hero.min_margin"),
        ('rival = "back"', "hero.min_margin"),
    ):
        with pytest.raises(CategoryConfigError, match=rf"category 'default', field '{field}'"):
            load_catalog(write_catalog(tmp_path, BASE_TOML + f"\n[categories.default.hero]\n{table}\n"))


def test_the_shipped_apparel_hero_margin_is_over_back():
    hero = load_catalog().get("apparel").hero
    assert hero is not None and hero.rival == "back" and 0.0 <= hero.min_margin <= 1.0


def test_placeholder_vote_similarity_is_optional_per_category_and_checked(tmp_path):
    assert load_catalog(write_catalog(tmp_path, BASE_TOML)).default.placeholder_vote_similarity is None
    table = "\n[categories.default.placeholder_vote]\nmin_similarity = 0.22\n"
    assert load_catalog(write_catalog(tmp_path, BASE_TOML + table)).default.placeholder_vote_similarity == 0.22
    for body, field in (("min_similarity = 1.5", "placeholder_vote.min_similarity"), ("", "min_similarity")):
        with pytest.raises(CategoryConfigError, match=field):
            load_catalog(write_catalog(tmp_path, BASE_TOML + f"\n[categories.default.placeholder_vote]\n{body}\n"))
    with pytest.raises(CategoryConfigError, match="threshold"):
        load_catalog(write_catalog(tmp_path, BASE_TOML + "\n[categories.default.placeholder_vote]\nthreshold = 0.2\n"))


def test_the_shipped_apparel_vote_is_stricter_than_the_service_wide_one():
    from gateway.decisions.placeholders import VoteRule

    assert load_catalog().get("apparel").placeholder_vote_similarity > VoteRule.min_similarity
    assert load_catalog().default.placeholder_vote_similarity is None
