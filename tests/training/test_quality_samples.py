"""The quality heads' samples: deterministic, labelled renders of every kind, and the sample list on a small fake
data tree (never ../shared/data)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.helpers import encode, product_photo
from training import placeholder_synthesis as ps
from training import quality_data as qd
from training.quality_samples import (
    DEGRADED_PER_KIND,
    HARD_NEGATIVE_KINDS,
    HELD_OUT_PLACEHOLDER_FAMILY,
    N_BOX,
    N_CARD,
    N_GLYPH,
    N_POSTER,
    N_TEXT,
    PHONE_PHOTOS_PER_PRODUCT,
    PHOTO_KINDS,
    REAL_PLACEHOLDER_VARIANTS,
    SHOP_PLACEHOLDER_VARIANTS,
    Spec,
    build_specs,
    in_store_picks,
    render,
)

FONTS = ps.font_paths()[:3]


@pytest.fixture(scope="module")
def studio_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "shirt.jpg"
    path.write_bytes(encode(product_photo(420, seed=3)))
    return path


@pytest.fixture(scope="module")
def real_placeholder(tmp_path_factory):
    image = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([20, 20, 60, 60], fill=(30, 180, 230, 255))
    path = tmp_path_factory.mktemp("placeholders") / "shop_logo.png"
    image.save(path)
    return path


@pytest.mark.parametrize("kind", PHOTO_KINDS)
def test_photo_degradations_are_deterministic_and_labelled(studio_photo, kind):
    spec = Spec(f"{kind}:shirt", kind, str(studio_photo), "catalog:shirt", "train")
    first, meta = render(spec, FONTS)
    second, again = render(spec, FONTS)
    assert np.array_equal(first, second) and meta == again
    labels = meta["labels"]
    assert labels["placeholder"] == 0.0
    expected_blur = {"blur": 1.0, "motion": 1.0, "crop": 0.0, "soft": 0.0, "original": 0.0}
    if kind in expected_blur:
        assert labels["blur"] == expected_blur[kind], meta
    if kind in ("mild_blur", "sweep"):
        assert labels["blur"] == qd.blur_label(meta["sigma_work"])
    if kind == "in_store":
        assert labels == {"blur": None, "small_object": 0.0, "placeholder": 0.0}
    if kind.startswith("small_"):
        assert labels["small_object"] == 1.0 and meta["area"] < qd.SMALL_POSITIVE_AREA
    if kind.startswith("large_"):
        assert labels["small_object"] == 0.0 and meta["area"] >= qd.SMALL_NEGATIVE_AREA
    other = render(Spec(f"{kind}:other", kind, str(studio_photo), "catalog:shirt", "train"), FONTS)[0]
    assert kind in ("original", "in_store") or not np.array_equal(first, other)  # the key seeds the variant


@pytest.mark.parametrize("kind", ["ph_text", "ph_glyph", "ph_box"])
def test_rendered_placeholders_are_deterministic(kind):
    spec = Spec(f"{kind}:7", kind, "", "phrase:Image coming soon", "train")
    first, meta = render(spec, FONTS)
    assert np.array_equal(first, render(spec, FONTS)[0])
    assert meta["labels"] == {"blur": None, "small_object": None, "placeholder": 1.0}


def test_real_placeholder_variants_are_deterministic_and_on_a_plain_canvas(real_placeholder):
    plain = render(Spec("ph_real:logo:0", "ph_real", str(real_placeholder), "real:x", "train"), FONTS)[0]
    spec = Spec("ph_real:logo:3", "ph_real", str(real_placeholder), "real:x", "train")
    assert np.array_equal(render(spec, FONTS)[0], render(spec, FONTS)[0])
    with Image.open(real_placeholder) as png:
        flattened = np.asarray(ps.real_placeholder_variant(png, qd.rng_for(0), plain=True))
    assert flattened[0, 0].tolist() == [255, 255, 255]  # transparent corner -> white
    assert plain.size > 0


@pytest.mark.parametrize("kind", HARD_NEGATIVE_KINDS)
def test_hard_negatives_are_deterministic_photos_labelled_only_for_the_placeholder_head(studio_photo, kind):
    source = "" if kind in ("card", "poster") else str(studio_photo)
    spec = Spec(f"{kind}:shirt", kind, source, "product:shirt", "train")
    first, meta = render(spec, FONTS)
    assert np.array_equal(first, render(spec, FONTS)[0])
    assert meta["labels"] == {"blur": None, "small_object": None, "placeholder": 0.0}
    image = Image.open(io.BytesIO(first.tobytes()))
    assert min(image.size) >= 100  # a product-page picture, not a thumbnail
    if kind == "shop":
        assert first.tobytes() == studio_photo.read_bytes()  # the shop's file as it is
    if kind == "thin":  # a sliver: the object's box is far narrower than the canvas one way
        mask = np.asarray(image.convert("L")) < 245
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        extent = sorted([(rows[-1] - rows[0] + 1) / image.height, (cols[-1] - cols[0] + 1) / image.width])
        assert extent[0] < 0.25 * extent[1]
    if kind == "drawing":  # dark lines on white
        grey = np.asarray(image.convert("L"))
        assert (grey == 255).mean() > 0.6 and grey.min() < 100
    if kind == "blank":  # washed towards white
        assert np.asarray(image.convert("L")).min() > 255 * 0.5


def test_degraded_placeholders_are_small_low_quality_copies_of_their_parent(real_placeholder):
    parent = Spec("ph_real:logo:3", "ph_real", str(real_placeholder), "real:x", "train")
    spec = Spec(f"ph_degraded:{parent.key}", "ph_degraded", parent.source, parent.group, parent.role)
    first, meta = render(spec, FONTS)
    assert np.array_equal(first, render(spec, FONTS)[0])
    assert meta["labels"] == {"blur": None, "small_object": None, "placeholder": 1.0}
    image = Image.open(io.BytesIO(first.tobytes()))
    assert image.format == "JPEG" and max(image.size) < 2 * 240


def test_in_store_picks_are_evenly_spaced_and_capped():
    paths = [f"p{i:02d}.jpg" for i in range(10)]
    assert in_store_picks(list(reversed(paths))) == ["p00.jpg", "p02.jpg", "p04.jpg", "p06.jpg"]
    assert len(in_store_picks(paths[:3])) == 3 and len(in_store_picks(paths)) == PHONE_PHOTOS_PER_PRODUCT


def test_sample_list_covers_every_source_and_kind(tmp_path):
    (tmp_path / "catalog").mkdir()
    product_photo(1200, seed=1).save(tmp_path / "catalog" / "big.jpg")
    product_photo(300, seed=2).save(tmp_path / "catalog" / "small.jpg")
    (tmp_path / "catalog" / "manifest.csv").write_text(
        "file,style,category,color,view\nbig.jpg,mh01,mh,red,main\nsmall.jpg,lt03,lt,,other\n"
    )
    (tmp_path / "grocery" / "iconic-images-and-descriptions").mkdir(parents=True)
    (tmp_path / "grocery" / "train.txt").write_text("".join(f"train/Fruit/Kiwi/{i}.jpg, 1, 1\n" for i in range(6)))
    (tmp_path / "placeholders").mkdir()
    Image.new("RGBA", (40, 30)).save(tmp_path / "placeholders" / f"{HELD_OUT_PLACEHOLDER_FAMILY}_x.png")
    specs = build_specs(tmp_path)
    assert len({s.key for s in specs}) == len(specs)
    kinds = [s.kind for s in specs]
    photo_kinds = len(PHOTO_KINDS) - 1  # in_store is not made from catalog photos
    assert kinds.count("mild_blur") == 1  # only photos >= 1000 px
    assert sum(k in PHOTO_KINDS and k != "in_store" for k in kinds) == 2 * photo_kinds - 1
    assert 1 <= kinds.count("in_store") <= 6
    assert (kinds.count("ph_text"), kinds.count("ph_glyph"), kinds.count("ph_box")) == (N_TEXT, N_GLYPH, N_BOX)
    real = [s for s in specs if s.kind == "ph_real"]
    assert len(real) == REAL_PLACEHOLDER_VARIANTS + 1 and {s.role for s in real} == {"test"}
    assert specs == build_specs(tmp_path)
    assert not any(k in HARD_NEGATIVE_KINDS[:1] or k == "ph_shop" for k in kinds)  # no products/: none of those


def test_other_shops_photos_train_only_under_a_licence_that_allows_it(tmp_path):
    """products/: photos of a permissively licensed shop are split by product; a GPL shop's are test only (a shop
    never trained on), and so are its placeholders; hard negatives are made only from trainable pictures."""
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "manifest.csv").write_text("file,style,category,color,view\n")
    shop = tmp_path / "products"
    (shop / "placeholders").mkdir(parents=True)
    rows = ["file,source,source_path,licence,product,category,view_index"]
    for i in range(12):
        for name, licence in (("spree", "BSD-3-Clause (Spree)"), ("thelia", '"GPL-3.0-or-later (Thelia)"')):
            product_photo(200, seed=i).save(shop / f"{name}_{i}.jpg")
            rows.append(f"{name}_{i}.jpg,x,y,{licence},{name}_p{i // 2},furniture,{i % 2}")
    (shop / "manifest.csv").write_text("\n".join(rows) + "\n")
    for name in ("spree_noimage.png", "smartstore_default.png"):
        Image.new("RGBA", (40, 30)).save(shop / "placeholders" / name)
    (shop / "placeholders" / "manifest.csv").write_text(
        "file,source,source_path,licence\nspree_noimage.png,x,y,BSD-3-Clause\nsmartstore_default.png,x,y,AGPL-3.0\n"
    )
    specs = build_specs(tmp_path)
    shop_specs = [s for s in specs if s.kind == "shop"]
    assert len(shop_specs) == 24
    assert {s.role for s in shop_specs if "thelia" in s.source} == {"test"}
    assert {s.role for s in shop_specs if "spree" in s.source} <= {"train", "calibration", "test"}
    derived = [s for s in specs if s.kind in ("thin", "drawing", "blank")]
    assert len(derived) == 12 and all("spree" in s.source for s in derived)
    for s in shop_specs:  # views of one product stay on one side of the split
        assert all(o.role == s.role for o in shop_specs if o.group == s.group)
    placeholders = [s for s in specs if s.kind == "ph_shop"]
    assert len(placeholders) == 2 * (SHOP_PLACEHOLDER_VARIANTS + 1)
    assert {s.role for s in placeholders if "smartstore" in s.source} == {"test"}
    assert {s.role for s in placeholders if "spree" in s.source} == {"train"}
    assert sum(s.kind == "card" for s in specs) == N_CARD and sum(s.kind == "poster" for s in specs) == N_POSTER
    degraded = [s for s in specs if s.kind == "ph_degraded"]
    assert len(degraded) == sum(min(n, sum(s.kind == k for s in specs)) for k, n in DEGRADED_PER_KIND.items())
    by_key = {s.key: s for s in specs}
    assert all(by_key[s.key.removeprefix("ph_degraded:")].role == s.role for s in degraded)
