"""Development images for the variant (own colourway) measurements, analysed as the cpu profile serves them: the
production preprocessing (hashes of THUMB, as the gateway computes them) and a vision model file (EMBEDDING and the
apparel type head) through onnxruntime (evaluation.vision_runtime). Cached per model file and image list.

- catalog (`catalog/manifest.csv`, Magento sample data): apparel views with their manifest type; a product is one
  style in one colour, its colourways are the other colours of the style.
- products (`products/manifest.csv`, other shops): the colourway families whose keys share a prefix (Thelia
  `-c1`/`-c2` recolours, Smartstore Converse colours, Ray-Ban frames, iPad finishes, AbanteCart shades, nopCommerce
  Adidas colours); each key is a product, its family the colourways. Types are not labelled there: index 0 of a
  product counts as its front.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.tensors import EMBEDDING, type_probs_output
from training.datasets import DEFAULT_DATA, types_from_manifest

# Product keys -> colourway family (None: not part of a family). Order matters: the first pattern that matches.
FAMILY_PATTERNS = (
    re.compile(r"^(thelia_PROD\d+-[a-z]+)-c\d$"),
    re.compile(r"^(smartstore_converse-all-star)-(?!group)[a-z]+$"),
    re.compile(r"^(smartstore_rayban-wayfarer)-.+$"),
    re.compile(r"^(smartstore_ipad-9-7)(?:-[a-z]+)?$"),
    re.compile(r"^(abante_\d+-.+)-r\d+$"),
    re.compile(r"^(nop_adidas-campus-80s)-\d$"),
)


@dataclass
class VariantListing:
    """One row per image: where it came from, its product and colourway family, its (manifest) type."""

    paths: list[Path]
    source: list[str]  # catalog | products
    products: list[str]
    families: list[str]
    types: list[str]  # manifest type (catalog); `front` for index 0 and `detail` for others (products)


@dataclass
class VariantImages(VariantListing):
    """The listing and what the served models say about each image."""

    embeddings: np.ndarray  # (n, EMBEDDING_DIM) as served (L2-normalised here)
    hsv_hist: np.ndarray  # (n, HSV_HIST_BINS)
    phash: np.ndarray
    dhash_edge: np.ndarray
    sizes: np.ndarray  # (n, 2) height, width
    type_probs: np.ndarray  # (n, types of apparel): the served apparel type head
    thumbs: np.ndarray  # (n, 128, 128, 3) uint8 THUMB as served: the duplicate rule's tone and framing rescues read it


def family_of(product: str) -> str | None:
    for pattern in FAMILY_PATTERNS:
        if match := pattern.match(product):
            return match.group(1)
    return None


def listing(data: Path = DEFAULT_DATA) -> VariantListing:
    """The catalog's apparel views and the products/ colourway families (module docstring)."""
    paths, source, products, families, types = [], [], [], [], []
    catalog = types_from_manifest(data / "catalog" / "manifest.csv")
    for path, image_type, style, product in zip(catalog.paths, catalog.types, catalog.groups, catalog.products):
        paths.append(path)
        source.append("catalog")
        products.append(product)
        families.append(style)
        types.append(image_type)
    manifest = data / "products" / "manifest.csv"
    if manifest.is_file():
        rows = sorted(csv.DictReader(manifest.open()), key=lambda r: (r["product"], r["view_index"] or "9", r["file"]))
        for row in rows:
            family = family_of(row["product"])
            if family is None:
                continue
            paths.append(manifest.parent / row["file"])
            source.append("products")
            products.append(row["product"])
            families.append(family)
            types.append("front" if products.count(row["product"]) == 1 else "detail")  # its first image
    return VariantListing(paths, source, products, families, types)


def load_variant_images(model: Path, cache_dir: Path, data: Path = DEFAULT_DATA) -> VariantImages:
    """Every listed image analysed by `model` (cached under cache_dir by the model's, the list's, the
    preprocessing's and the hashes' fingerprints)."""
    from evaluation.vision_runtime import SERVED, analyse_with_vision
    from gateway.hashing import compute_hashes
    from preprocessing.perceptual import HASH_VERSION
    from preprocessing.pipeline import preprocessing_fingerprint

    images = listing(data)
    paths = images.paths
    if not paths:
        raise SystemExit(f"{data}: no catalog or products manifest (development data)")
    keyed_by = "\n".join([*map(str, paths), preprocessing_fingerprint(), f"hashes {HASH_VERSION}", "thumbs"])
    key = hashlib.sha256(model.read_bytes() + keyed_by.encode()).hexdigest()[:16]
    cache = cache_dir / f"variant-{key}.npz"
    if not cache.is_file():
        analysis = analyse_with_vision(model, (np.fromfile(p, dtype=np.uint8) for p in paths), with_thumbs=True)
        if not analysis.valid.all():
            raise SystemExit(f"undecodable: {[str(p) for p, ok in zip(paths, analysis.valid) if not ok]}")
        hashes = [compute_hashes(thumb) for thumb in analysis.thumbs]
        outputs = analysis.outputs[SERVED]
        embeddings = outputs[EMBEDDING.name]
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            embeddings=embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True),
            hsv_hist=np.stack([h.hsv_hist for h in hashes]),
            phash=np.array([h.phash for h in hashes], dtype=np.uint64),
            dhash_edge=np.array([h.dhash_edge for h in hashes], dtype=np.uint64),
            sizes=analysis.sizes,
            type_probs=outputs[type_probs_output("apparel")],
            thumbs=analysis.thumbs,
        )
    arrays = np.load(cache)
    return VariantImages(**vars(images), **{k: arrays[k] for k in arrays.files})
