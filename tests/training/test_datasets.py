"""Development-data readers on small fake trees (never ../shared/data): catalog manifest, grocery lists, folder
layouts, photo sources and in-store photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import encode, product_photo
from training.datasets import (
    APPAREL_PREFIXES,
    catalog_class,
    categories_from_catalog,
    categories_from_folders,
    categories_from_grocery,
    categories_from_products,
    development_data,
    phone_photos,
    photo_sources,
    types_from_folders,
    types_from_manifest,
)
from training.splits import is_validation

CLASSES = ("fruit", "vegetables", "packages", "apparel", "gear")
MANIFEST = """file,style,category,color,view
mh01-black_main.jpg,mh01,mh,black,main
mh01-black_back.jpg,mh01,mh,black,back
mh01-black_alt1.jpg,mh01,mh,black,alt1_2
wb04-blue_outfit.jpg,wb04,wb,blue,outfit
lt03.jpg,lt03,lt,,other
mb01_main.jpg,mb01,mb,,main
"""


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "manifest.csv").write_text(MANIFEST)
    grocery = tmp_path / "grocery"
    (grocery / "iconic-images-and-descriptions" / "Fruit" / "Apple").mkdir(parents=True)
    (grocery / "iconic-images-and-descriptions" / "Fruit" / "Apple" / "Golden-Delicious_Iconic.jpg").touch()
    (grocery / "classes.csv").write_text(
        "Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
        "Iconic Image Path (str),Product Description Path (str)\n"
        "Golden-Delicious,0,Apple,0,/iconic-images-and-descriptions/Fruit/Apple/Golden-Delicious_Iconic.jpg,x\n"
    )
    (grocery / "train.txt").write_text(
        "train/Fruit/Apple/Golden-Delicious/a.jpg, 0, 0\ntrain/Fruit/Apple/Golden-Delicious/b.jpg, 0, 0\n\n"
    )
    (grocery / "val.txt").write_text("val/Fruit/Apple/Golden-Delicious/c.jpg, 0, 0\n")
    return tmp_path


def test_catalog_prefixes_split_into_apparel_and_gear():
    assert {catalog_class(p) for p in APPAREL_PREFIXES} == {"apparel"}
    assert catalog_class("lt") == catalog_class("gear") == "gear"


def test_manifest_views_become_types_of_apparel_only(data_root):
    data = types_from_manifest(data_root / "catalog" / "manifest.csv")
    assert data.types == ["front", "back", "detail", "lifestyle"]  # gear rows and `other` views are left out
    assert data.groups == ["mh01", "mh01", "mh01", "wb04"]
    assert data.products == ["mh01-black", "mh01-black", "mh01-black", "wb04-blue"]
    assert data.paths[0] == data_root / "catalog" / "mh01-black_main.jpg"


def test_type_folders_read_types_and_reject_unknown_folders(tmp_path):
    for type_name in ("front", "back"):
        (tmp_path / type_name).mkdir()
        for i in range(2):
            (tmp_path / type_name / f"{type_name}{i}.jpg").write_bytes(encode(product_photo(64, seed=i)))
    (tmp_path / "front" / "notes.txt").write_text("not an image")
    data = types_from_folders(tmp_path, ("front", "back", "detail"))
    assert sorted(data.types) == ["back", "back", "front", "front"]
    (tmp_path / "sideways").mkdir()
    with pytest.raises(SystemExit, match="sideways"):
        types_from_folders(tmp_path, ("front", "back", "detail"))


def test_grocery_lists_give_training_and_validation_photos_by_product(data_root):
    data = categories_from_grocery(data_root / "grocery", CLASSES)
    assert data.classes == ["fruit"] * 4 and set(data.groups) == {"Golden-Delicious"}
    assert data.validation == [False, False, False, True]  # iconic + train.txt, then val.txt
    assert data.paths[0].name == "Golden-Delicious_Iconic.jpg"
    with pytest.raises(SystemExit, match="Fruit"):
        categories_from_grocery(data_root / "grocery", ("vegetables", "apparel", "gear"))


def test_catalog_categories_are_split_by_style(data_root):
    data = categories_from_catalog(data_root / "catalog" / "manifest.csv", CLASSES)
    assert data.classes == ["apparel"] * 4 + ["gear"] * 2
    assert data.validation == [is_validation(g) for g in data.groups]
    with pytest.raises(SystemExit, match="gear"):
        categories_from_catalog(data_root / "catalog" / "manifest.csv", ("apparel",))


def test_development_data_is_grocery_then_catalog(data_root):
    data = development_data(data_root / "grocery", data_root / "catalog" / "manifest.csv", CLASSES)
    assert data.sources == ["grocery"] * 4 + ["catalog"] * 6
    assert len(data.paths) == len(data.classes) == len(data.groups) == len(data.validation) == 10


def test_category_folders_group_by_first_sub_folder(tmp_path):
    (tmp_path / "fruit" / "kiwi").mkdir(parents=True)
    (tmp_path / "fruit" / "kiwi" / "1.jpg").touch()
    (tmp_path / "fruit" / "loose.png").touch()
    data = categories_from_folders(tmp_path, CLASSES)
    assert sorted(data.groups) == ["fruit/kiwi", "fruit/loose"]
    (tmp_path / "toasters").mkdir()
    with pytest.raises(SystemExit, match="toasters"):
        categories_from_folders(tmp_path, CLASSES)


def test_photo_sources_and_phone_photos(data_root):
    sources = photo_sources(data_root)
    assert [s.group for s in sources][:2] == ["catalog:mh01", "catalog:mh01"]
    assert sources[-1].group == "grocery:Golden-Delicious" and sources[-1].category == "grocery"
    assert [s.category for s in sources[:6]] == ["apparel"] * 4 + ["gear"] * 2
    phones = phone_photos(data_root)
    assert [p.name for p in phones["Golden-Delicious"]] == ["a.jpg", "b.jpg", "c.jpg"]


def test_products_of_trainable_shops_become_category_examples_split_by_product(tmp_path):
    rows = [
        "file,source,source_path,licence,product,category,view_index",
        "abante_1.jpg,x,y,OSL-3.0,abante_1-shoe,footwear,0",
        "abante_2.jpg,x,y,OSL-3.0,abante_1-shoe,footwear,1",
        "spree_3.jpg,x,y,BSD-3-Clause,spree_3-tote,bags,0",
        "vendure_4.jpg,x,y,Unsplash License (photographer: A),vendure_4-chair,furniture,",
        "smartstore_5.jpg,x,y,AGPL-3.0,smartstore_5-chair,furniture,0",  # never trained on: the held-out shops
        "odoo13_6.jpg,x,y,LGPL-3.0,odoo13_6-mug,kitchen,0",  # no head class
    ]
    (tmp_path / "products").mkdir()
    (tmp_path / "products" / "manifest.csv").write_text("\n".join(rows) + "\n")
    data = categories_from_products(tmp_path, (*CLASSES, "footwear", "furniture"))
    assert [p.name for p in data.paths] == ["abante_1.jpg", "abante_2.jpg", "spree_3.jpg", "vendure_4.jpg"]
    assert data.classes == ["footwear", "footwear", "gear", "furniture"]
    assert data.groups[0] == data.groups[1] == "products:abante_1-shoe"  # one product's views on one side
    assert data.validation == [is_validation(g) for g in data.groups] and set(data.sources) == {"products"}
    with pytest.raises(SystemExit, match="footwear"):
        categories_from_products(tmp_path, CLASSES)  # the shipped classes: add the class and its route first
