"""The placeholder evaluation's items: seeded variants and unseen placeholders, the calibration/test split, and the
photo negatives on a small fake data tree (never ../shared/data)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from evaluation import placeholder_data as pdata
from evaluation.placeholder_data import Item, split_of, unseen_placeholders, variant
from tests.helpers import product_photo
from training.placeholder_synthesis import PHRASES
from training.quality_samples import in_store_picks
from training.splits import role_of


def test_variants_are_seeded_flattened_and_decodable():
    logo = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    logo.paste((200, 30, 30, 255), (20, 15, 60, 45))
    first = variant(logo, np.random.default_rng(3))
    assert np.array_equal(first, variant(logo, np.random.default_rng(3)))
    decoded = Image.open(io.BytesIO(first.tobytes())).convert("RGB")
    assert decoded.getpixel((0, 0))[0] > 200  # the transparent border became white, not black


def test_unseen_placeholders_use_captions_the_head_never_saw():
    items = unseen_placeholders(5, seed=0)
    assert [it.kind for it in items] == ["unseen"] * 5
    assert all(np.array_equal(a.data, b.data) for a, b in zip(items, unseen_placeholders(5, seed=0)))
    phrases = {it.group.removeprefix("phrase:") for it in items if it.group.startswith("phrase:")}
    assert phrases and not phrases & set(PHRASES)
    assert {it.category for it in items} <= set(pdata.CATEGORIES)


def test_split_keeps_groups_together_and_alternates_known_variants():
    photo = [Item(f"photo:{i}", "photo", "catalog:mh01", "apparel") for i in range(3)]
    assert len({split_of(it) for it in photo}) == 1
    assert split_of(Item("k", "known", "known:1", "gear")) == "test"
    assert split_of(Item("k", "known", "known:0", "gear")) == "calibration"


def test_photos_leave_out_the_heads_in_store_training_picks(tmp_path, monkeypatch):
    (tmp_path / "catalog").mkdir()
    product_photo(64).save(tmp_path / "catalog" / "a.jpg")
    (tmp_path / "catalog" / "manifest.csv").write_text("file,style,category,color,view\na.jpg,mb01,mb,,main\n")
    (tmp_path / "grocery" / "iconic-images-and-descriptions").mkdir(parents=True)
    listing = "".join(f"train/Fruit/Kiwi/{i:02d}.jpg, 1, 1\n" for i in range(12))
    (tmp_path / "grocery" / "train.txt").write_text(listing)
    monkeypatch.setattr(pdata, "DATA", tmp_path)
    items = pdata.photos(in_store=3)
    assert items[0].category == "gear" and items[0].head_seen == (role_of("catalog:mb01") == "train")
    in_store = [it for it in items if it.group == "grocery:Kiwi"]
    assert len(in_store) == 3
    picks = {
        str(p) for p in in_store_picks([tmp_path / "grocery" / f"train/Fruit/Kiwi/{i:02d}.jpg" for i in range(12)])
    }
    assert not {it.path for it in in_store} & picks
