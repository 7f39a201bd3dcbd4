"""Labelled file lists from the development data (../shared/data) and from folder layouts: the one reader of each
source, shared by the heads, the backbone fine-tune and the evaluations (same lists -> same embedding caches).

- catalog (Magento sample data, `catalog/manifest.csv`): apparel views -> image types; style prefixes -> `apparel`
  or `gear`; the split group is the style.
- grocery (Grocery Store Dataset): `train.txt` + iconic images / `val.txt` -> fruit / vegetables / packages; the
  group is the product (fine class); in-store phone photos by product.
- folders: DIR/<type>/*.jpg (type heads) or DIR/<class>/**/*.jpg (category head).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from training.splits import is_validation

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})  # training folders
MANIFEST_VIEW_TO_TYPE = {"main": "front", "back": "back", "alt1": "detail", "outfit": "lifestyle", "side": "side"}
# Catalog style prefixes of apparel; every other prefix of the catalog (bags, watches, fitness gear, gift card) is gear.
APPAREL_PREFIXES = {"mh", "mj", "mp", "ms", "msh", "mt", "wb", "wh", "wj", "wp", "ws", "wsh", "wt"}
GROCERY_ICONIC = Path("grocery") / "iconic-images-and-descriptions"


def catalog_class(prefix: str) -> str:
    """`apparel` or `gear` for a catalog manifest's category prefix."""
    return "apparel" if prefix in APPAREL_PREFIXES else "gear"


# ---------------------------------------------------------------------------------------------- image types


@dataclass
class TypeExamples:
    paths: list[Path]
    types: list[str]
    groups: list[str]  # product style: the unit of the train/validation split
    products: list[str]  # one product page (style + colour): the unit of the hero metric


def types_from_manifest(manifest: Path) -> TypeExamples:
    """Apparel catalog views with a type (main -> front, back, alt1 -> detail, outfit -> lifestyle, side)."""
    data = TypeExamples([], [], [], [])
    for row in csv.DictReader(manifest.open()):
        view = row["view"].split("_")[0]
        if row["category"] not in APPAREL_PREFIXES or view not in MANIFEST_VIEW_TO_TYPE:
            continue
        data.paths.append(manifest.parent / row["file"])
        data.types.append(MANIFEST_VIEW_TO_TYPE[view])
        data.groups.append(row["style"])
        data.products.append(f"{row['style']}-{row['color']}")
    return data


def types_from_folders(root: Path, types: tuple[str, ...]) -> TypeExamples:
    """DIR/<type>/*.jpg; every file is its own group and product."""
    data = TypeExamples([], [], [], [])
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if type_dir.name not in types:
            raise SystemExit(f"{type_dir}: '{type_dir.name}' is not a type of this category ({', '.join(types)})")
        for path in sorted(type_dir.glob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                data.paths.append(path)
                data.types.append(type_dir.name)
                data.groups.append(path.stem)
                data.products.append(path.stem)
    return data


# ---------------------------------------------------------------------------------------------- top-level categories


@dataclass
class CategoryExamples:
    paths: list[Path] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # product (grocery fine class, catalog style): split unit
    validation: list[bool] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, path: Path, cls: str, group: str, validation: bool, source: str) -> None:
        self.paths.append(path)
        self.classes.append(cls)
        self.groups.append(group)
        self.validation.append(validation)
        self.sources.append(source)

    def extend(self, other: CategoryExamples) -> None:
        for values, more in zip(self.__dict__.values(), other.__dict__.values()):
            values.extend(more)


def categories_from_grocery(root: Path, classes: tuple[str, ...]) -> CategoryExamples:
    """Grocery Store Dataset: train.txt (+ one iconic image per product) for training, val.txt for validation. The
    top-level class is the first folder of the path (Fruit / Vegetables / Packages), lower-cased."""
    names = {}
    data = CategoryExamples()
    with (root / "classes.csv").open() as file:
        for row in csv.reader(file):
            if row and row[1].strip().isdigit():
                names[int(row[1])] = row[0].strip()
                iconic = Path(row[4].strip().lstrip("/"))
                data.add(root / iconic, _grocery_class(iconic.parts[1], classes), row[0].strip(), False, "grocery")
    for listing, validation in (("train.txt", False), ("val.txt", True)):
        for line in (root / listing).read_text().splitlines():
            if not line.strip():
                continue
            path, fine = (part.strip() for part in line.split(",")[:2])
            relative = Path(path)
            data.add(
                root / relative, _grocery_class(relative.parts[1], classes), names[int(fine)], validation, "grocery"
            )
    return data


def _grocery_class(folder: str, classes: tuple[str, ...]) -> str:
    cls = folder.lower()
    if cls not in classes:
        raise SystemExit(
            f"grocery top-level folder {folder!r} is not a class of [category_head] ({', '.join(classes)})"
        )
    return cls


def categories_from_catalog(manifest: Path, classes: tuple[str, ...]) -> CategoryExamples:
    """Catalog studio photos: apparel style prefixes -> `apparel`, every other row (bags, watches, fitness gear,
    gift card) -> `gear`; split by style."""
    for needed in ("apparel", "gear"):
        if needed not in classes:
            raise SystemExit(f"--catalog needs the class {needed!r} in [category_head] classes")
    data = CategoryExamples()
    for row in csv.DictReader(manifest.open()):
        cls = catalog_class(row["category"])
        data.add(manifest.parent / row["file"], cls, row["style"], is_validation(row["style"]), "catalog")
    return data


def categories_from_folders(root: Path, classes: tuple[str, ...]) -> CategoryExamples:
    """DIR/<class>/... : every image below a class folder (recursively). The split group is the first sub-folder
    below the class folder (keep one product's photos in one sub-folder), else the file name."""
    data = CategoryExamples()
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if class_dir.name not in classes:
            raise SystemExit(
                f"{class_dir}: {class_dir.name!r} is not a class of [category_head] in categories.toml "
                f"({', '.join(classes)}); add it there (with its route) first"
            )
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                relative = path.relative_to(class_dir)
                group = f"{class_dir.name}/{relative.parts[0] if len(relative.parts) > 1 else path.stem}"
                data.add(path, class_dir.name, group, is_validation(group), f"folders:{root}")
    return data


# products/ manifest categories -> category head classes (bags and sports gear join the catalog's `gear`). The rest
# (other, home, kitchen, electronics, beauty, ...) are too mixed, too close to a class, or from one shop only.
SHOP_CATEGORY_CLASSES = {"footwear": "footwear", "furniture": "furniture", "bags": "gear", "sports": "gear"}


def categories_from_products(data: Path, classes: tuple[str, ...]) -> CategoryExamples:
    """products/ photos by SHOP_CATEGORY_CLASSES, from the shops whose licence lets them train shipped weights only,
    split by product: the other shops' photos are the never-trained-shop evaluation (evaluation.category_shops).
    Opt-in (`training.category_head --products`): its classes must be in categories.toml first, and the shipped head
    does not use it (MODELS.md "category": adding footwear and furniture cost catalog request routing 3.5 points)."""
    missing = sorted(set(SHOP_CATEGORY_CLASSES.values()) - set(classes))
    if missing:
        raise SystemExit(f"--products needs the classes {missing} in [category_head] classes")
    examples = CategoryExamples()
    for photo in shop_photos(data):
        cls = SHOP_CATEGORY_CLASSES.get(photo.category)
        if cls is not None and photo.trainable:
            group = f"products:{photo.product}"
            examples.add(photo.path, cls, group, is_validation(group), "products")
    return examples


def development_data(grocery: Path | None, catalog: Path | None, classes: tuple[str, ...]) -> CategoryExamples:
    """The development sets in one fixed order (grocery, then catalog). The category head, the backbone fine-tune
    and the search evaluation build their file lists here, so they share one embedding cache."""
    data = CategoryExamples()
    if grocery:
        data.extend(categories_from_grocery(grocery, classes))
    if catalog:
        data.extend(categories_from_catalog(catalog, classes))
    return data


# ---------------------------------------------------------------------------------------------- photos by source


class PhotoSource(NamedTuple):
    path: Path
    group: str  # catalog:<style> or grocery:<product>: the split unit
    category: str  # apparel, gear (catalog) or grocery


def photo_sources(data: Path) -> list[PhotoSource]:
    """Every catalog photo (manifest order), then every grocery iconic image (sorted)."""
    sources = []
    for row in csv.DictReader((data / "catalog" / "manifest.csv").open()):
        path = data / "catalog" / row["file"]
        sources.append(PhotoSource(path, f"catalog:{row['style']}", catalog_class(row["category"])))
    for path in sorted((data / GROCERY_ICONIC).rglob("*.jpg")):
        sources.append(PhotoSource(path, f"grocery:{path.stem.removesuffix('_Iconic')}", "grocery"))
    return sources


def phone_photos(data: Path) -> dict[str, list[Path]]:
    """In-store photos by product (grocery train.txt + val.txt)."""
    by_product: dict[str, list[Path]] = {}
    for listing in ("train.txt", "val.txt"):
        path = data / "grocery" / listing
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            relative = line.split(",")[0].strip()
            if relative:
                by_product.setdefault(Path(relative).parent.name, []).append(data / "grocery" / relative)
    return by_product


# ---------------------------------------------------------------------------------------------- products/: other shops

PRODUCTS = Path("products")
# Licences under which development pictures may train weights the repository ships (../shared/data/README.md:
# GPL/AGPL sources are for evaluation, hard-negative mining and development checks only).
TRAINABLE_LICENCES = ("OSL-", "AFL-", "LGPL-", "BSD-", "MIT", "Unsplash License")


def trainable(licence: str) -> bool:
    """A manifest licence whose pictures may train shipped weights (a GPL shop's Unsplash photo may: its photo is
    under the Unsplash License)."""
    return licence.startswith(TRAINABLE_LICENCES[:-1]) or TRAINABLE_LICENCES[-1] in licence


def shop_of(file_name: str) -> str:
    """The shop platform a products/ file comes from (its file-name prefix; SmartStoreNET is Smartstore's
    predecessor, PrestaShop 1.4 and 1.7 one platform)."""
    prefix = file_name.split("_")[0]
    return {"ssnet": "smartstore", "ps14": "prestashop", "ps17": "prestashop"}.get(prefix, prefix)


class ShopPhoto(NamedTuple):
    path: Path
    shop: str
    category: str  # the manifest's category (beauty, furniture, ...)
    product: str  # views of one product share it: the split unit
    trainable: bool
    view_index: int | None = None  # 0: the shop's main picture, where the source says so


def shop_photos(data: Path) -> list[ShopPhoto]:
    """Every product picture of products/ (manifest order); [] when the folder is absent."""
    manifest = data / PRODUCTS / "manifest.csv"
    if not manifest.is_file():
        return []
    return [
        ShopPhoto(
            data / PRODUCTS / r["file"],
            shop_of(r["file"]),
            r["category"],
            r["product"],
            trainable(r["licence"]),
            int(r["view_index"]) if r.get("view_index") else None,
        )
        for r in csv.DictReader(manifest.open())
    ]


class ShopPlaceholder(NamedTuple):
    path: Path
    family: str  # the platform whose design it is (its variants and languages are one family)
    trainable: bool


def shop_placeholders(data: Path) -> list[ShopPlaceholder]:
    """The real placeholders of products/placeholders/ (manifest order); [] when absent."""
    manifest = data / PRODUCTS / "placeholders" / "manifest.csv"
    if not manifest.is_file():
        return []
    family = {"prestashop14": "prestashop", "prestashop17": "prestashop", "spree2011": "spree", "spree4": "spree"}
    rows = csv.DictReader(manifest.open())
    return [
        ShopPlaceholder(
            data / PRODUCTS / "placeholders" / r["file"],
            family.get(r["file"].split("_")[0], r["file"].split("_")[0]),
            trainable(r["licence"]),
        )
        for r in rows
    ]
