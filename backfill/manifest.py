"""Catalog manifests: JSONL, CSV or Parquet, one product per row (`images` a list) or one image per row (`image`,
rows of a product grouped by `product_id` in file order). Images are http(s) URLs, or paths (relative paths are
read from the manifest's folder; `s3://`, `gs://` and other pyarrow filesystems work too).

    {"product_id": "sku-1", "category": "apparel", "colour": "navy", "images": ["https://cdn/a.jpg",
     {"id": "b", "path": "b.jpg", "supplier": "B"}]}

    product_id,category,colour,image,image_id,supplier      (image_id, supplier, category, colour optional)

`colour` is the product's colour as /v1/select takes it (the own-variant check prefers images that show it).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from gateway.schemas import ImageIn, IndexItemIn, IndexRequest, SelectRequest

FORMATS = (".jsonl", ".json", ".csv", ".parquet")


class ManifestError(ValueError):
    """A manifest that cannot be read as products; the message names the row and field."""


@dataclass(frozen=True)
class ImageRef:
    id: str
    source: str  # http(s) URL, or a path / filesystem URI
    supplier: str | None = None

    @property
    def is_url(self) -> bool:
        return self.source.lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str | None
    images: tuple[ImageRef, ...]
    colour: str | None = None

    def fingerprint(self) -> str:
        """What the product's inputs are (ids, sources, suppliers, category, colour): the same manifest row, the same
        fingerprint. File contents behind a URL or path are not read for it (a changed file at the same address
        needs a new address or a new version to be redone)."""
        body = [self.product_id, self.category, [[i.id, i.source, i.supplier] for i in self.images]]
        if self.colour is not None:  # only then: the fingerprints of manifests without colours stay as they were
            body.append(self.colour)
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "product_id": self.product_id,
                "category": self.category,
                "colour": self.colour,
                "images": [vars(i) for i in self.images],
            }
        )

    @staticmethod
    def from_json(text: str) -> Product:
        row = json.loads(text)
        images = tuple(ImageRef(**i) for i in row["images"])
        return Product(row["product_id"], row["category"], images, row.get("colour"))


def image_ref(value, product_id: str, number: int, supplier: str | None = None) -> ImageRef:
    """One image of a manifest row: a string (URL or path) or an object with `url` or `path`, `id`, `supplier`."""
    if isinstance(value, str):
        source, image_id = value, None
    elif isinstance(value, dict):
        source = value.get("url") or value.get("path")
        image_id, supplier = value.get("id"), value.get("supplier", supplier)
    else:
        source = None
    if not source:
        raise ManifestError(f"product {product_id!r}: images[{number - 1}] needs a `url` or `path`")
    return ImageRef(str(image_id or f"{product_id}-{number}"), str(source), supplier)


def products_from_rows(rows: list[dict]) -> list[Product]:
    """Products from manifest rows of either shape; a product repeated in per-product rows is an error. In
    per-image rows, a product's category and colour are the first non-empty ones of its rows."""
    products: dict[str, tuple[str | None, str | None, list[ImageRef]]] = {}
    per_product: set[str] = set()
    for line, row in enumerate(rows, start=1):
        product_id = str(row.get("product_id") or "")
        if not product_id:
            raise ManifestError(f"row {line}: `product_id` is missing")
        category = row.get("category") or None
        colour = str(row["colour"]) if row.get("colour") else None
        if row.get("images") is not None:
            if product_id in products:
                raise ManifestError(f"row {line}: product {product_id!r} appears twice")
            per_product.add(product_id)
            refs = [image_ref(v, product_id, n) for n, v in enumerate(row["images"], start=1)]
            products[product_id] = (category, colour, refs)
        elif row.get("image"):
            if product_id in per_product:
                raise ManifestError(f"row {line}: product {product_id!r} appears twice")
            known_category, known_colour, refs = products.setdefault(product_id, (category, colour, []))
            value = {"path": row["image"], "id": row.get("image_id") or None, "supplier": row.get("supplier") or None}
            refs.append(image_ref(value, product_id, len(refs) + 1))
            products[product_id] = (known_category or category, known_colour or colour, refs)
        else:
            raise ManifestError(f"row {line}: give `images` (a list) or `image`")
    return [Product(p, category, tuple(refs), colour) for p, (category, colour, refs) in products.items() if refs]


def read_rows(path: str) -> list[dict]:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in FORMATS:
        raise ManifestError(f"{path}: a manifest is one of {', '.join(FORMATS)}")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = read_bytes(path).decode("utf-8")
    if suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError as error:
                raise ManifestError(f"{path}:{line}: not JSON ({error.msg})") from None
    return rows


def read_manifest(path: str) -> list[Product]:
    """The manifest's products, relative image paths made absolute against the manifest's folder."""
    base = manifest_folder(path)
    return [replace(p, images=tuple(resolve(i, base) for i in p.images)) for p in products_from_rows(read_rows(path))]


def manifest_folder(path: str) -> str:
    if "://" in path:
        return path.rsplit("/", 1)[0]
    return str(Path(path).resolve().parent)


def resolve(image: ImageRef, base: str) -> ImageRef:
    if image.is_url or "://" in image.source or image.source.startswith("/"):
        return image
    return ImageRef(image.id, f"{base}/{image.source}", image.supplier)


def read_bytes(source: str, limit: int = -1) -> bytes:
    """A file's bytes (at most `limit`) through pyarrow's filesystems (local paths, s3://, gs://, hdfs://)."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(source if "://" in source else str(Path(source).resolve()))
    with filesystem.open_input_stream(path) as stream:
        return stream.read(None if limit < 0 else limit)


def image_in(image: ImageRef) -> ImageIn:
    """The gateway's ImageIn for one image. A file's path travels in `url` (built without the API's http(s)-only check,
    which guards a public endpoint, not a manifest the operator wrote): backfill.fetch reads it."""
    return ImageIn.model_construct(id=image.id, url=image.source, data=None, supplier=image.supplier)


def select_request(product: Product) -> SelectRequest:
    """The /v1/select request for the product, checked as the API checks one (ids unique, lengths) with each image's
    source left to backfill.fetch."""
    images = [{"id": i.id, "supplier": i.supplier, "data": ""} for i in product.images]  # stand-in sources
    fields = {"product_id": product.product_id, "category": product.category, "colour": product.colour}
    SelectRequest.model_validate({**fields, "images": images})
    return SelectRequest.model_construct(**fields, max_images=None, images=[image_in(i) for i in product.images])


def index_request(product: Product, partition: str | None) -> IndexRequest:
    """The /v1/index request for the product's images, in `partition` (None: the category head predicts it), checked
    as select_request's."""
    fields = [{"product_id": product.product_id, "image_id": i.id, "category": partition} for i in product.images]
    IndexRequest.model_validate({"items": [f | {"data": ""} for f in fields]})
    items = [IndexItemIn.model_construct(**f, url=i.source, data=None) for f, i in zip(fields, product.images)]
    return IndexRequest.model_construct(items=items)
