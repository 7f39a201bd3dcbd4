"""Labelled near-duplicate pairs from real product photos: generate them, evaluate duplicate detectors on them, and
tune the gateway's de-duplication thresholds from them.

    python -m evaluation.dedup_pairs generate --source DIR [--manifest CSV] --out DIR [--seed 0] [--pairs N]
                                            [--category NAME]
    python -m evaluation.dedup_pairs evaluate --pairs DIR [DIR ...] [--min-precision 0.99] [--no-cnn]
    python -m evaluation.dedup_pairs tune --pairs DIR [DIR ...] [--category NAME] [--min-precision 0.99] [--write]

Pairs (label 1 = near-duplicate: the same information, both kept would be redundant; 0 = distinct, both must stay):

- positives: a real image and a transformed copy (resize, JPEG re-encode, whitespace padding, border crop,
  brightness or contrast change, PNG/WebP format change, small semi-transparent corner watermark, sometimes two of
  them, sometimes both sides transformed differently); every transformed image's recipe is kept in the pair list.
- negatives of the hard kinds. With a manifest (columns file,style,category,color,view): same style in another
  colour (`colourway`, same view first), same style and colour in another view (`view`), another style of the
  same category among the 3 nearest by a cheap colour/layout statistic (`lookalike`). Without one every image is
  its own product: look-alikes are the nearest other images by the statistic. A kind short of candidates hands its
  share to `lookalike`, then `nearest` (the 10 nearest other products whatever their category), then `other`
  (random other products). Always some synthetic ones: the same photo with its main colour recoloured
  (`recolour`) or with a small opaque shape on the product, 4-8% of the picture (`region`). Half of the real
  negatives have their second image re-exported (a mild positive recipe), so "transformed or not" is no shortcut.

The grocery dataset's `classes.csv` is understood as a manifest too (style = fine class, category = coarse class).
A pairs directory holds `pairs.csv`, `meta.json` (source, seed, counts) and `images/` (the generated files);
originals are referenced as `source/<path relative to the source folder>`.

Our hashes are computed exactly as in production: DALI preprocess (`PreprocessRunner(...).run(...)["THUMB"]`, CPU)
then `gateway.hashing.compute_hashes`. Thresholds of single-signal baselines are each method's best under the same
precision-first rule (maximise recall subject to precision >= --min-precision), chosen on the same pairs, and
also cross-validated (grouped by source image) so overfitted thresholds show.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from contract.categories import DedupThresholds, parse_catalog
from contract.categories_file import CATEGORIES_FILE_ENV, DEFAULT_CATEGORIES_FILE, load_catalog
from training.splits import fold_of

GENERATOR_VERSION = 1
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PAIRS_FILE = "pairs.csv"
META_FILE = "meta.json"
IMAGES_DIR = "images"
SOURCE_PREFIX = "source/"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
PAIR_COLUMNS = ("pair_id", "label", "kind", "a", "b", "a_recipe", "b_recipe", "group", "category", "source")
DEFAULT_MIN_PRECISION = 0.99
# Recalls this close to the best count as equal when choosing thresholds (0.005 = 8 of 1,600 duplicates): such
# differences are noise (cross-validation does not see them), while looser thresholds cost precision on new data and
# make catalog-scale candidate generation (gateway.catalog_dedup, multi-index pHash probing) much slower.
DEFAULT_RECALL_TOLERANCE = 0.005

POSITIVE_KINDS = ("resize", "jpeg", "pad", "crop", "brightness", "contrast", "format", "watermark")
# Share of the negatives per kind; a kind without enough candidates hands its share to `lookalike`, then `nearest`
# (the nearest other products by the statistic, whatever their category), then `other` (random other products).
NEGATIVE_MIX_MANIFEST = {"colourway": 0.30, "view": 0.15, "lookalike": 0.35, "recolour": 0.10, "region": 0.10}
NEGATIVE_MIX_FOLDER = {"lookalike": 0.45, "other": 0.25, "recolour": 0.15, "region": 0.15}
SECOND_OP_PROBABILITY = 0.35  # a positive gets a second, different transformation
BOTH_SIDES_PROBABILITY = 0.25  # a positive pairs two different re-exports of the original
REEXPORT_NEGATIVE_PROBABILITY = 0.5  # a real negative's second image is re-exported
LOOKALIKE_NEIGHBOURS = 3  # same category, other style
NEAREST_NEIGHBOURS = 10  # any other style: where a category has too few look-alikes
RECOLOUR_MIN_SHARE = 0.05  # a synthetic colourway recolours at least this share of the picture
PREVIEW_SIDE = 256  # planning (look-alike statistic, synthetic edits) works on small copies

_RESAMPLING = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
_WATERMARK_TEXTS = ("© supplier", "SAMPLE", "© shop", "photo: studio", "example.com")
WATERMARK_MAX_WIDTH = 0.3


# ------------------------------------------------------------------------------------------------ transformations


def _uniform(rng: np.random.Generator, low: float, high: float, digits: int = 3) -> float:
    return round(float(rng.uniform(low, high)), digits)


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return round(1.0 + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(low, high)), 3)


def sample_step(kind: str, rng: np.random.Generator) -> dict:
    """One transformation step of `kind` (a POSITIVE_KINDS entry except the encoding kinds) with random parameters."""
    if kind == "resize":
        return {"op": "resize", "scale": _uniform(rng, 0.3, 0.9), "filter": str(rng.choice(list(_RESAMPLING)))}
    if kind == "pad":
        if rng.random() < 0.5:
            return {"op": "pad", "mode": "square", "fill": int(rng.choice([255, 255, 250, 245]))}
        return {"op": "pad", "mode": "margin", "margin": _uniform(rng, 0.03, 0.15), "fill": 255}
    if kind == "crop":
        total_x, total_y = _uniform(rng, 0.02, 0.08), _uniform(rng, 0.02, 0.08)
        split_x, split_y = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))
        return {
            "op": "crop",
            "left": round(total_x * split_x, 4),
            "right": round(total_x * (1 - split_x), 4),
            "top": round(total_y * split_y, 4),
            "bottom": round(total_y * (1 - split_y), 4),
        }
    if kind == "brightness":
        return {"op": "brightness", "factor": _signed(rng, 0.10, 0.25)}
    if kind == "contrast":
        return {"op": "contrast", "factor": _signed(rng, 0.10, 0.25)}
    if kind == "watermark":
        return {
            "op": "watermark",
            "text": str(rng.choice(_WATERMARK_TEXTS)),
            "corner": str(rng.choice(["top_left", "top_right", "bottom_left", "bottom_right"])),
            "size": _uniform(rng, 0.02, 0.035),  # font size as a fraction of the image height
            "alpha": int(rng.integers(70, 150)),
            "grey": int(rng.choice([0, 60, 128, 200])),
        }
    raise ValueError(f"no step for kind {kind!r}")


def sample_encoding(kind: str, rng: np.random.Generator) -> dict:
    if kind == "jpeg":
        return {"op": "encode", "format": "JPEG", "quality": int(rng.integers(30, 96))}
    if kind == "format":
        if rng.random() < 0.5:
            return {"op": "encode", "format": "PNG"}
        if rng.random() < 0.25:
            return {"op": "encode", "format": "WEBP", "lossless": True}
        return {"op": "encode", "format": "WEBP", "quality": int(rng.integers(70, 96))}
    return {"op": "encode", "format": "JPEG", "quality": int(rng.integers(80, 96))}


_GEOMETRY_ORDER = {"crop": 0, "pad": 1, "resize": 2, "brightness": 3, "contrast": 3, "watermark": 4}


def sample_positive_recipe(kind: str, rng: np.random.Generator, second_op_probability: float) -> tuple[list[dict], str]:
    """(recipe, kind name): main transformation `kind`, maybe a second one (name `kind+second`), always ending in an
    encoding step."""
    kinds = [kind]
    if rng.random() < second_op_probability:
        kinds.append(str(rng.choice([k for k in POSITIVE_KINDS if k != kind])))
    encode_kinds = [k for k in kinds if k in ("jpeg", "format")]
    steps = sorted((sample_step(k, rng) for k in kinds if k not in ("jpeg", "format")), key=_step_order)
    return steps + [sample_encoding(encode_kinds[0] if encode_kinds else "", rng)], "+".join(kinds)


def _step_order(step: dict) -> int:
    return _GEOMETRY_ORDER[step["op"]]


def _object_mask(rgb: np.ndarray, tolerance: int = 24) -> np.ndarray:
    """Pixels that differ from the median border colour (the product, not the studio background)."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    background = np.median(border, axis=0)
    return np.abs(rgb.astype(np.int16) - background).max(axis=2) > tolerance


def _watermark(img: Image.Image, step: dict) -> Image.Image:
    width, height = img.size
    size = max(8, round(height * step["size"]))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(step["text"])
    if right - left > WATERMARK_MAX_WIDTH * width:  # small: at most this share of the width
        font = ImageFont.load_default(size=max(6, int(size * WATERMARK_MAX_WIDTH * width / (right - left))))
        left, top, right, bottom = font.getbbox(step["text"])
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    margin = round(0.02 * min(width, height))
    x = margin - left if step["corner"].endswith("left") else width - margin - right
    y = margin - top if step["corner"].startswith("top") else height - margin - bottom
    grey = step["grey"]
    ImageDraw.Draw(overlay).text((x, y), step["text"], font=font, fill=(grey, grey, grey, step["alpha"]))
    return Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")


def _recolour(img: Image.Image, step: dict) -> Image.Image:
    """Rotate the hue of the saturated pixels near the product's main hue: a synthetic colourway."""
    hsv = np.asarray(img.convert("HSV")).copy()
    hue = hsv[..., 0].astype(np.int16)
    near = np.abs((hue - step["hue"] + 128) % 256 - 128) <= step["width"]
    selected = near & (hsv[..., 1] > step["min_saturation"])
    hsv[..., 0] = np.where(selected, (hue + step["shift"]) % 256, hue)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _region(img: Image.Image, step: dict) -> Image.Image:
    """An opaque shape on the product (a print, a pocket, a flash spot): a small region that changes the picture."""
    out = img.copy()
    width, height = img.size
    box = [step["x0"] * width, step["y0"] * height, step["x1"] * width, step["y1"] * height]
    fill = tuple(step["colour"])
    (ImageDraw.Draw(out).ellipse if step["shape"] == "ellipse" else ImageDraw.Draw(out).rectangle)(box, fill=fill)
    return out


def apply_steps(img: Image.Image, steps: list[dict]) -> Image.Image:
    """Apply every step except the final encoding."""
    img = img.convert("RGB")
    for step in steps:
        op = step["op"]
        width, height = img.size
        if op == "encode":
            continue
        if op == "resize":
            size = (max(1, round(width * step["scale"])), max(1, round(height * step["scale"])))
            img = img.resize(size, _RESAMPLING[step["filter"]])
        elif op == "pad":
            fill = (step["fill"],) * 3
            if step["mode"] == "square":
                side = max(width, height)
                canvas = Image.new("RGB", (side, side), fill)
                canvas.paste(img, ((side - width) // 2, (side - height) // 2))
                img = canvas
            else:
                img = ImageOps.expand(img, border=round(step["margin"] * max(width, height)), fill=fill)
        elif op == "crop":
            img = img.crop(
                (
                    round(step["left"] * width),
                    round(step["top"] * height),
                    width - round(step["right"] * width),
                    height - round(step["bottom"] * height),
                )
            )
        elif op == "brightness":
            img = ImageEnhance.Brightness(img).enhance(step["factor"])
        elif op == "contrast":
            img = ImageEnhance.Contrast(img).enhance(step["factor"])
        elif op == "watermark":
            img = _watermark(img, step)
        elif op == "recolour":
            img = _recolour(img, step)
        elif op == "region":
            img = _region(img, step)
        else:
            raise ValueError(f"unknown recipe op {op!r}")
    return img


def encode_image(img: Image.Image, step: dict) -> tuple[bytes, str]:
    """(file bytes, file suffix) of the encoding step."""
    buffer = io.BytesIO()
    fmt = step["format"]
    if fmt == "JPEG":
        img.save(buffer, "JPEG", quality=step["quality"])
        return buffer.getvalue(), ".jpg"
    if fmt == "PNG":
        img.save(buffer, "PNG")
        return buffer.getvalue(), ".png"
    if fmt == "WEBP":
        if step.get("lossless"):
            img.save(buffer, "WEBP", lossless=True)
        else:
            img.save(buffer, "WEBP", quality=step["quality"])
        return buffer.getvalue(), ".webp"
    raise ValueError(f"unknown format {fmt!r}")


def apply_recipe(img: Image.Image, recipe: list[dict]) -> tuple[bytes, str]:
    if not recipe or recipe[-1]["op"] != "encode":
        raise ValueError("a recipe ends with an encode step")
    return encode_image(apply_steps(img, recipe), recipe[-1])


def sample_recolour(img: Image.Image, rng: np.random.Generator) -> dict | None:
    """A hue rotation of the dominant saturated colour (+-24 of 256 hue steps around it), or None when that colour
    covers too little of the picture for the change to be visible."""
    hsv = np.asarray(img.convert("RGB").resize((64, 64)).convert("HSV")).reshape(-1, 3).astype(np.int16)
    min_saturation, width = 60, 24
    saturated = hsv[:, 1] > min_saturation
    if saturated.mean() < RECOLOUR_MIN_SHARE:
        return None
    main_hue = int(np.argmax(np.bincount(hsv[saturated, 0] // 16, minlength=16))) * 16 + 8
    near = np.abs((hsv[:, 0] - main_hue + 128) % 256 - 128) <= width
    if (near & saturated).mean() < RECOLOUR_MIN_SHARE:
        return None
    return {
        "op": "recolour",
        "hue": main_hue,
        "width": width,
        "shift": int(rng.integers(40, 217)),
        "min_saturation": min_saturation,
    }


def sample_region(img: Image.Image, rng: np.random.Generator) -> dict | None:
    """An opaque shape covering 4-8% of the picture inside the product's box, in a colour far from the product."""
    small = np.asarray(img.convert("RGB").resize((64, 64)))
    mask = _object_mask(small)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size < 8 or cols.size < 8:
        return None
    y0, y1, x0, x1 = rows[0] / 64, (rows[-1] + 1) / 64, cols[0] / 64, (cols[-1] + 1) / 64
    area = float(rng.uniform(0.04, 0.08))
    aspect = float(rng.uniform(0.6, 1.6))
    w, h = min(np.sqrt(area * aspect), x1 - x0), min(np.sqrt(area / aspect), y1 - y0)
    left = float(rng.uniform(x0, x1 - w))
    top = float(rng.uniform(y0, y1 - h))
    mean = small[mask].mean(axis=0)
    colour = [int(255 - c) if abs(255 - 2 * c) > 80 else int(rng.integers(0, 256)) for c in mean]
    return {
        "op": "region",
        "shape": str(rng.choice(["ellipse", "rectangle"])),
        "x0": round(left, 4),
        "y0": round(top, 4),
        "x1": round(left + w, 4),
        "y1": round(top + h, 4),
        "colour": colour,
    }


# ---------------------------------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class SourceImage:
    path: str  # relative to the source folder, '/'-separated
    style: str  # product identity: images of one style show one product (possibly in several colours)
    category: str  # look-alike pool: other styles of the same category are hard negatives
    colour: str = ""
    view: str = ""


def list_images(source: Path) -> list[str]:
    return sorted(
        p.relative_to(source).as_posix()
        for p in source.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def load_manifest(manifest: Path, source: Path) -> list[SourceImage]:
    """Catalog manifest (file,style,category,color,view) or the grocery dataset's classes.csv."""
    with manifest.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{manifest}: empty manifest")
    images = []
    for row in rows:
        if "file" in row:
            entry = (row["file"], row.get("style") or row["file"], row.get("category") or "", row.get("color"))
            view = row.get("view") or ""
        elif "Iconic Image Path (str)" in row:
            entry = (row["Iconic Image Path (str)"], row["Class Name (str)"], row["Coarse Class Name (str)"], "")
            view = "iconic"
        else:
            raise ValueError(f"{manifest}: unknown columns {sorted(row)} (want file,style,category,color,view)")
        file, style, category, colour = entry
        path = _resolve_manifest_path(file, manifest, source)
        if path is not None:
            images.append(SourceImage(path, style, category, colour or "", view))
    if not images:
        raise ValueError(f"{manifest}: none of its files is under {source}")
    return sorted(set(images), key=lambda image: image.path)


def _resolve_manifest_path(file: str, manifest: Path, source: Path) -> str | None:
    relative = file.lstrip("/")
    for candidate in (source / relative, manifest.parent / relative):
        if candidate.is_file():
            try:
                return candidate.resolve().relative_to(source.resolve()).as_posix()
            except ValueError:
                return None
    return None


def folder_images(source: Path) -> list[SourceImage]:
    """Without a manifest every image is its own product; no category, so look-alikes come from the statistic."""
    return [SourceImage(path, style=path, category="") for path in list_images(source)]


def layout_statistic(img: Image.Image) -> np.ndarray:
    """Cheap colour/layout descriptor: an 8x8 aspect-squashed RGB miniature plus a 4x4x4 colour histogram."""
    small = np.asarray(img.convert("RGB").resize((8, 8), Image.Resampling.BOX), dtype=np.float32) / 255.0
    coarse = np.asarray(img.convert("RGB").resize((64, 64), Image.Resampling.BOX)) // 64
    bins = (coarse[..., 0].astype(np.intp) * 4 + coarse[..., 1]) * 4 + coarse[..., 2]
    histogram = np.bincount(bins.ravel(), minlength=64).astype(np.float32) / bins.size
    return np.concatenate([small.ravel(), 4.0 * histogram])


# ---------------------------------------------------------------------------------------------------- planning


@dataclass
class PlannedPair:
    label: int
    kind: str
    a: str  # source path
    b: str
    a_recipe: list[dict] | None
    b_recipe: list[dict] | None
    group: str  # the style of `a`: pairs sharing a product stay in one cross-validation fold


def _sample(rng: np.random.Generator, candidates: list, count: int) -> list:
    if count <= 0:
        return []
    if count >= len(candidates):
        return list(candidates)
    return [candidates[i] for i in sorted(rng.choice(len(candidates), size=count, replace=False))]


def _random_pairs(
    rng: np.random.Generator, images: list[SourceImage], count: int, taken: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Up to `count` new unordered pairs of images of different styles, drawn at random."""
    chosen: list[tuple[int, int]] = []
    seen = set(taken)
    for _ in range(20 * count):
        if len(chosen) >= count:
            break
        i, j = sorted(rng.choice(len(images), size=2, replace=False).tolist())
        if images[i].style != images[j].style and (i, j) not in seen:
            seen.add((i, j))
            chosen.append((i, j))
    return chosen


def negative_candidates(images: list[SourceImage], stats: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """Unordered index pairs per negative kind, sorted (so sampling from them is deterministic)."""
    by_style: dict[str, list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        by_style[image.style].append(i)
    colourway_same_view, colourway_other_view, views = [], [], []
    for members in by_style.values():
        for i, j in combinations(members, 2):
            a, b = images[i], images[j]
            if a.colour and b.colour and a.colour != b.colour:
                (colourway_same_view if a.view == b.view else colourway_other_view).append((i, j))
            elif a.colour == b.colour and a.view != b.view:
                views.append((i, j))

    styles = np.unique([image.style for image in images], return_inverse=True)[1]
    categories = np.unique([image.category for image in images], return_inverse=True)[1]
    has_category = np.array([bool(image.category) for image in images])
    squared = (stats**2).sum(axis=1)
    lookalikes: set[tuple[int, int]] = set()
    nearest_anywhere: set[tuple[int, int]] = set()
    for start in range(0, len(images), 256):  # row blocks: memory stays O(256 n) for large folders
        rows = np.arange(start, min(start + 256, len(images)))
        distances = squared[rows, None] + squared[None, :] - 2.0 * stats[rows] @ stats.T
        other_style = styles[rows, None] != styles[None, :]
        same_category = (categories[rows, None] == categories[None, :]) | ~has_category[rows, None]
        for found, pool, k in (
            (lookalikes, other_style & same_category, LOOKALIKE_NEIGHBOURS),
            (nearest_anywhere, other_style, NEAREST_NEIGHBOURS),
        ):
            masked = np.where(pool, distances, np.inf)
            nearest = np.argsort(masked, axis=1, kind="stable")[:, :k]
            for i, row in zip(rows.tolist(), nearest):
                found.update((min(i, j), max(i, j)) for j in row.tolist() if np.isfinite(masked[i - start, j]))
    return {
        "colourway": colourway_same_view + colourway_other_view,
        "view": views,
        "lookalike": sorted(lookalikes),
        "nearest": sorted(nearest_anywhere),
    }


def plan_pairs(
    images: list[SourceImage],
    previews: Sequence[Image.Image],
    stats: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    has_manifest: bool,
) -> list[PlannedPair]:
    n_positive = n_pairs // 2
    n_negative = n_pairs - n_positive
    plans: list[PlannedPair] = []

    kinds: list[str] = []
    while len(kinds) < n_positive:
        kinds.extend(rng.permutation(POSITIVE_KINDS).tolist())
    order: list[int] = []
    while len(order) < n_positive:
        order.extend(rng.permutation(len(images)).tolist())
    for kind, i in zip(kinds[:n_positive], order[:n_positive]):
        b_recipe, name = sample_positive_recipe(kind, rng, SECOND_OP_PROBABILITY)
        a_recipe = None
        if rng.random() < BOTH_SIDES_PROBABILITY:
            a_recipe, _ = sample_positive_recipe(str(rng.choice(POSITIVE_KINDS)), rng, 0.0)
        path = images[i].path
        plans.append(PlannedPair(1, name, path, path, a_recipe, b_recipe, images[i].style))

    mix = NEGATIVE_MIX_MANIFEST if has_manifest else NEGATIVE_MIX_FOLDER
    quotas = {kind: int(round(share * n_negative)) for kind, share in mix.items()}
    quotas[max(mix, key=mix.get)] += n_negative - sum(quotas.values())
    candidates = negative_candidates(images, stats)

    synthetic: dict[str, list[PlannedPair]] = {}
    spill = 0  # negatives a kind could not supply, handed to `lookalike`, then `nearest`, then `other`
    for kind, sampler in (("recolour", sample_recolour), ("region", sample_region)):
        wanted, made = quotas.get(kind, 0), []
        for i in rng.permutation(len(images)).tolist() * 2:  # up to two per image
            if len(made) >= wanted:
                break
            step = sampler(previews[i], rng)
            if step is not None:
                b_recipe = [step, sample_encoding("", rng)]
                made.append(PlannedPair(0, kind, images[i].path, images[i].path, None, b_recipe, images[i].style))
        synthetic[kind] = made
        spill += wanted - len(made)

    real: list[tuple[str, tuple[int, int]]] = []
    taken: set[tuple[int, int]] = set()
    for kind in ("colourway", "view", "lookalike", "nearest", "other"):
        wanted = quotas.get(kind, 0)
        if kind in ("lookalike", "nearest", "other"):
            wanted, spill = wanted + spill, 0
        if kind == "other":
            chosen = _random_pairs(rng, images, wanted, taken)
        elif kind == "colourway":  # the same-view colourways first: they differ in colour only
            pool = [pair for pair in candidates[kind] if pair not in taken]
            same_view = [pair for pair in pool if images[pair[0]].view == images[pair[1]].view]
            other_view = [pair for pair in pool if images[pair[0]].view != images[pair[1]].view]
            chosen = _sample(rng, same_view, wanted)
            chosen += _sample(rng, other_view, wanted - len(chosen))
        else:
            chosen = _sample(rng, [pair for pair in candidates[kind] if pair not in taken], wanted)
        taken.update(chosen)
        real.extend((kind, pair) for pair in chosen)
        spill += wanted - len(chosen)
    for kind, (i, j) in real:
        if rng.random() < 0.5:
            i, j = j, i
        b_recipe = None
        if rng.random() < REEXPORT_NEGATIVE_PROBABILITY:
            b_recipe, _ = sample_positive_recipe(str(rng.choice(POSITIVE_KINDS)), rng, 0.0)
        plans.append(PlannedPair(0, kind, images[i].path, images[j].path, None, b_recipe, images[i].style))
    for kind in ("recolour", "region"):
        plans.extend(synthetic[kind])
    return plans


# ---------------------------------------------------------------------------------------------------- generate


def generate(
    source: Path,
    out: Path,
    *,
    manifest: Path | None = None,
    seed: int = 0,
    n_pairs: int | None = None,
    category: str = "default",
    source_name: str | None = None,
) -> dict:
    """Write `pairs.csv`, `meta.json` and `images/` into `out`; returns the metadata."""
    source = source.resolve()
    if manifest is None and (source / "manifest.csv").is_file():
        manifest = source / "manifest.csv"
    images = load_manifest(manifest, source) if manifest else folder_images(source)
    if len(images) < 2:
        raise ValueError(f"{source}: need at least 2 images, found {len(images)}")
    if n_pairs is None:
        n_pairs = min(4000, 6 * len(images))
    rng = np.random.default_rng(seed)

    @lru_cache(maxsize=8)
    def original(i: int) -> Image.Image:
        with Image.open(source / images[i].path) as file:
            return file.convert("RGB")

    previews = []
    for i in range(len(images)):
        preview = original(i).copy()
        preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BOX)
        previews.append(preview)
    stats = np.stack([layout_statistic(preview) for preview in previews])
    plans = plan_pairs(images, previews, stats, n_pairs, rng, has_manifest=manifest is not None)
    index_of = {image.path: i for i, image in enumerate(images)}

    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (out / IMAGES_DIR).iterdir():
        stale.unlink()
    rows: list[dict] = [{} for _ in plans]
    # visit pairs grouped by source image so each original is decoded about once
    for pair_id in sorted(range(len(plans)), key=lambda k: (index_of[plans[k].a], k)):
        plan = plans[pair_id]
        row = {"pair_id": pair_id, "label": plan.label, "kind": plan.kind, "group": plan.group}
        for side, path, recipe in (("a", plan.a, plan.a_recipe), ("b", plan.b, plan.b_recipe)):
            if recipe is None:
                row[side] = SOURCE_PREFIX + path
                row[f"{side}_recipe"] = ""
            else:
                data, suffix = apply_recipe(original(index_of[path]), recipe)
                name = f"{IMAGES_DIR}/{pair_id:05d}_{side}{suffix}"
                (out / name).write_bytes(data)
                row[side] = name
                row[f"{side}_recipe"] = json.dumps(recipe, separators=(",", ":"))
        row.update(category=category, source=source_name or source.name)
        rows[pair_id] = row
    with (out / PAIRS_FILE).open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=PAIR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts: dict[str, int] = defaultdict(int)
    for plan in plans:
        counts[f"{'positive' if plan.label else 'negative'}:{plan.kind.split('+')[0]}"] += 1
    meta = {
        "generator_version": GENERATOR_VERSION,
        "source": str(source),
        "source_name": source_name or source.name,
        "manifest": str(manifest.resolve()) if manifest else None,
        "seed": seed,
        "pairs": len(plans),
        "positives": sum(p.label for p in plans),
        "negatives": sum(1 - p.label for p in plans),
        "source_images": len(images),
        "category": category,
        "kinds": dict(sorted(counts.items())),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


# ------------------------------------------------------------------------------------------------ loading pairs


@dataclass
class PairSet:
    """Pairs of one or more pairs directories, images de-duplicated across pairs."""

    labels: np.ndarray  # (n,) int8, 1 = near-duplicate
    kinds: list[str]
    groups: list[str]  # cross-validation groups (source + product style)
    categories: list[str]
    a: np.ndarray  # (n,) index into files
    b: np.ndarray
    files: list[Path]
    metas: list[dict]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> PairSet:
        keep = np.flatnonzero(mask)
        return PairSet(
            labels=self.labels[keep],
            kinds=[self.kinds[k] for k in keep],
            groups=[self.groups[k] for k in keep],
            categories=[self.categories[k] for k in keep],
            a=self.a[keep],
            b=self.b[keep],
            files=self.files,
            metas=self.metas,
        )


def load_pairs(directories: Sequence[Path]) -> PairSet:
    files: list[Path] = []
    index: dict[Path, int] = {}
    labels, kinds, groups, categories, a_index, b_index, metas = [], [], [], [], [], [], []

    def file_index(path: Path) -> int:
        if path not in index:
            if not path.is_file():
                raise FileNotFoundError(f"pair image not found: {path}")
            index[path] = len(files)
            files.append(path)
        return index[path]

    for directory in directories:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        metas.append({**meta, "pairs_dir": str(directory)})
        source = Path(meta["source"])
        with (directory / PAIRS_FILE).open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                paths = [
                    source / p.removeprefix(SOURCE_PREFIX) if p.startswith(SOURCE_PREFIX) else directory / p
                    for p in (row["a"], row["b"])
                ]
                a_index.append(file_index(paths[0]))
                b_index.append(file_index(paths[1]))
                labels.append(int(row["label"]))
                kinds.append(row["kind"])
                groups.append(f"{row['source']}:{row['group']}")
                categories.append(row["category"])
    if not labels:
        raise ValueError("no pairs found")
    return PairSet(
        labels=np.array(labels, dtype=np.int8),
        kinds=kinds,
        groups=groups,
        categories=categories,
        a=np.array(a_index),
        b=np.array(b_index),
        files=files,
        metas=metas,
    )


# ---------------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metrics:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """1.0 when nothing is called a duplicate (no wrong merge was made)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def confusion(labels: np.ndarray, predicted: np.ndarray) -> Metrics:
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return Metrics(
        tp=int((labels & predicted).sum()),
        fp=int((~labels & predicted).sum()),
        fn=int((labels & ~predicted).sum()),
        tn=int((~labels & ~predicted).sum()),
    )


class Rule(NamedTuple):
    """The precision-first operating-point rule (see `_pick`)."""

    min_precision: float = DEFAULT_MIN_PRECISION
    recall_tolerance: float = DEFAULT_RECALL_TOLERANCE

    def describe(self) -> str:
        ties = (
            f"recalls within {self.recall_tolerance:g} of the best count as ties, then the stricter thresholds"
            if self.recall_tolerance > 0
            else "ties to the stricter thresholds"
        )
        return f"highest recall with precision >= {self.min_precision:g}; {ties}"


def _pick(
    recall: np.ndarray,
    precision: np.ndarray,
    strictness: np.ndarray,
    min_precision: float,
    recall_tolerance: float = 0.0,
) -> tuple[int, bool]:
    """Flat index of the precision-first choice among the points that accept something with precision >=
    min_precision: the highest recall, then the higher precision, then the strictest thresholds. With a
    recall_tolerance, recalls within it of the best count as ties (then: strictest, higher recall, higher precision).
    met=False when no point reaches min_precision (then the most precise point that accepts something)."""
    accepts = recall > 0
    feasible = accepts & (precision >= min_precision - 1e-12)
    if feasible.any():
        best = recall[feasible].max()
        tied = feasible & (recall >= best - recall_tolerance - 1e-12)
        if recall_tolerance > 0:
            keys = (-precision, -recall, np.where(tied, strictness, np.inf))
        else:
            keys = (strictness, -precision, -np.where(tied, recall, -1.0))
        return int(np.lexsort(keys)[0]), True
    ranked_precision = np.where(accepts, precision, -1.0)
    return int(np.lexsort((strictness, -recall, -ranked_precision))[0]), False


@dataclass(frozen=True)
class SingleThreshold:
    threshold: float  # duplicate when distance <= threshold
    metrics: Metrics
    met: bool  # precision target reached


def best_threshold(
    distances: np.ndarray, labels: np.ndarray, min_precision: float, recall_tolerance: float = 0.0
) -> SingleThreshold:
    """Precision-first threshold of one distance (duplicate when distance <= threshold), over its observed values."""
    distances, labels = np.asarray(distances, dtype=np.float64), np.asarray(labels).astype(bool)
    values, inverse = np.unique(distances, return_inverse=True)
    tp = np.cumsum(np.bincount(inverse, weights=labels, minlength=len(values)))
    fp = np.cumsum(np.bincount(inverse, weights=~labels, minlength=len(values)))
    n_pos = int(labels.sum())
    # a leading "accept nothing" candidate so an unreachable target still yields a defined threshold
    thresholds = np.concatenate([[-np.inf], values])
    tp, fp = np.concatenate([[0.0], tp]), np.concatenate([[0.0], fp])
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=tp + fp > 0)
    recall = tp / n_pos if n_pos else np.zeros_like(tp)
    k, met = _pick(recall, precision, np.arange(len(thresholds)), min_precision, recall_tolerance)
    return SingleThreshold(float(thresholds[k]), confusion(labels, distances <= thresholds[k]), met)


# ---------------------------------------------------------------------------------------------------- tuning

PHASH_GRID = np.arange(0, 33)
EDGE_GRID = np.arange(0, 33)
CHI2_GRID = np.round(np.arange(0, 1.0 + 1e-9, 0.005), 3)


@dataclass(frozen=True)
class OperatingPoint:
    thresholds: DedupThresholds
    metrics: Metrics
    met: bool


def tune_thresholds(
    phash_distance: np.ndarray,
    edge_distance: np.ndarray,
    chi2: np.ndarray,
    labels: np.ndarray,
    min_precision: float = DEFAULT_MIN_PRECISION,
    phash_grid: np.ndarray = PHASH_GRID,
    edge_grid: np.ndarray = EDGE_GRID,
    chi2_grid: np.ndarray = CHI2_GRID,
    recall_tolerance: float = 0.0,
) -> OperatingPoint:
    """Joint grid sweep of the three thresholds, precision first (see `_pick`); ties go to the stricter thresholds.

    Vectorised: each pair is counted in the cell of the strictest grid thresholds that accept it, and cumulative
    sums along the three axes give, for every grid point at once, how many positives and negatives it accepts.
    """
    labels = np.asarray(labels).astype(bool)
    grids = (np.asarray(phash_grid), np.asarray(edge_grid), np.asarray(chi2_grid, dtype=np.float64))
    values = (np.asarray(phash_distance), np.asarray(edge_distance), np.asarray(chi2, dtype=np.float64))
    # first grid index whose threshold accepts the pair (distance <= threshold); len(grid) = never accepted
    cells = tuple(np.searchsorted(grid, value, side="left") for grid, value in zip(grids, values))
    shape = tuple(len(grid) + 1 for grid in grids)
    counts = {}
    for name, mask in (("tp", labels), ("fp", ~labels)):
        histogram = np.zeros(shape, dtype=np.int64)
        np.add.at(histogram, tuple(cell[mask] for cell in cells), 1)
        counts[name] = histogram.cumsum(0).cumsum(1).cumsum(2)[:-1, :-1, :-1]
    tp, fp = counts["tp"].astype(np.float64), counts["fp"].astype(np.float64)
    n_pos = int(labels.sum())
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=tp + fp > 0)
    recall = tp / n_pos if n_pos else np.zeros_like(tp)
    # strictness: the sum of the three thresholds as fractions of their grid ranges (index order breaks exact ties)
    i, j, k = np.indices(tp.shape)
    strictness = i / max(1, tp.shape[0] - 1) + j / max(1, tp.shape[1] - 1) + k / max(1, tp.shape[2] - 1)
    flat, met = _pick(recall.ravel(), precision.ravel(), strictness.ravel(), min_precision, recall_tolerance)
    pi, di, ci = np.unravel_index(flat, tp.shape)
    thresholds = DedupThresholds(
        phash_max_distance=int(grids[0][pi]),
        dhash_edge_max_distance=int(grids[1][di]),
        hsv_chi2_max=float(grids[2][ci]),
    )
    return OperatingPoint(thresholds, confusion(labels, accept(values, thresholds)), met)


def accept(distances: tuple[np.ndarray, np.ndarray, np.ndarray], t: DedupThresholds) -> np.ndarray:
    """The gateway's rule on a distance table: duplicate only when all three distances are within thresholds."""
    phash_distance, edge_distance, chi2 = distances
    return (
        (np.asarray(phash_distance) <= t.phash_max_distance)
        & (np.asarray(edge_distance) <= t.dhash_edge_max_distance)
        & (np.asarray(chi2) <= t.hsv_chi2_max)
    )


def cross_validate(
    fit: Callable[[np.ndarray], object],
    predict: Callable[[object, np.ndarray], np.ndarray],
    labels: np.ndarray,
    groups: Sequence[str],
    folds: int = 5,
) -> Metrics:
    """Pooled held-out metrics: thresholds fitted on the other folds, applied to each fold in turn."""
    fold = fold_of(groups, folds)
    predicted = np.zeros(len(labels), dtype=bool)
    for k in range(folds):
        test = fold == k
        if test.any():
            predicted[test] = predict(fit(~test), test)
    return confusion(labels, predicted)


# ---------------------------------------------------------------------------------------------------- signatures


def _popcount64(words: np.ndarray) -> np.ndarray:
    table = np.array([byte.bit_count() for byte in range(256)], dtype=np.uint8)
    as_bytes = np.ascontiguousarray(words, dtype=np.uint64).view(np.uint8).reshape(len(words), 8)
    return table[as_bytes].sum(axis=1, dtype=np.int64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _popcount64(np.asarray(a, dtype=np.uint64) ^ np.asarray(b, dtype=np.uint64))


def chi2_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise chi-square distance, as gateway.hashing.chi2_distance."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 0.5 * np.sum((a - b) ** 2 / (a + b + 1e-10), axis=1)


@dataclass
class ProductionSignatures:
    phash: np.ndarray  # (n,) uint64
    dhash_edge: np.ndarray
    hsv_hist: np.ndarray  # (n, bins)
    embeddings: np.ndarray | None  # (n, 1280) L2-normalised, or None without the CNN
    seconds: dict[str, float]  # read_s, dali_s, hash_s, cnn_s


def production_signatures(files: Sequence[Path], with_cnn: bool, batch: int = 64) -> ProductionSignatures:
    """Our hashes exactly as the gateway gets them (DALI preprocess on CPU -> THUMB -> compute_hashes), and the
    CNN embedding of the same preprocess output (PIXELS -> EfficientNet-Lite0 backbone, torch on CPU)."""
    from gateway.hashing import compute_hashes
    from preprocessing.runner import PreprocessRunner

    seconds = {"read_s": 0.0, "dali_s": 0.0, "hash_s": 0.0, "cnn_s": 0.0}
    model = None
    if with_cnn:
        import torch

        from build_engines.backbone import load_backbone

        torch.set_num_threads(os.cpu_count() or 1)
        model = load_backbone()
    runner = PreprocessRunner(max_batch=batch)
    hashes, embeddings = [], []
    for start in range(0, len(files), batch):
        started = time.perf_counter()
        encoded = [np.fromfile(path, dtype=np.uint8) for path in files[start : start + batch]]
        seconds["read_s"] += time.perf_counter() - started
        started = time.perf_counter()
        outputs = runner.run(encoded)
        seconds["dali_s"] += time.perf_counter() - started
        if not outputs["VALID"].all():
            bad = [str(files[start + k]) for k in np.flatnonzero(~outputs["VALID"].ravel())]
            raise ValueError(f"DALI could not decode: {bad}")
        started = time.perf_counter()
        hashes.extend(compute_hashes(thumb) for thumb in outputs["THUMB"])
        seconds["hash_s"] += time.perf_counter() - started
        if model is not None:
            import torch

            started = time.perf_counter()
            with torch.inference_mode():
                embeddings.append(model(torch.from_numpy(outputs["PIXELS"])).numpy())
            seconds["cnn_s"] += time.perf_counter() - started
    return ProductionSignatures(
        phash=np.array([h.phash for h in hashes], dtype=np.uint64),
        dhash_edge=np.array([h.dhash_edge for h in hashes], dtype=np.uint64),
        hsv_hist=np.stack([h.hsv_hist for h in hashes]),
        embeddings=np.concatenate(embeddings) if embeddings else None,
        seconds=seconds,
    )


IMAGEHASH_METHODS = ("phash", "dhash", "whash", "colorhash")


def imagehash_signatures(files: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """imagehash's own functions on the full decoded image, as a user of the library would call them."""
    import imagehash

    functions = {
        "phash": imagehash.phash,
        "dhash": imagehash.dhash,
        "whash": imagehash.whash,
        "colorhash": imagehash.colorhash,  # 14 bins x 3 bits = 42 bits
    }
    seconds = dict.fromkeys(["decode_s", *functions], 0.0)
    values: dict[str, list[int]] = {name: [] for name in functions}
    for path in files:
        started = time.perf_counter()
        with Image.open(path) as file:
            img = file.convert("RGB")
        seconds["decode_s"] += time.perf_counter() - started
        for name, function in functions.items():
            started = time.perf_counter()
            bits = function(img).hash.ravel()
            seconds[name] += time.perf_counter() - started
            values[name].append(int("".join("1" if bit else "0" for bit in bits), 2))
    return {name: np.array(v, dtype=np.uint64) for name, v in values.items()}, seconds


IMAGEDEDUP_NOTE = (
    "needs torchvision even for PHash (imagededup 0.3.3 imports its CNN module), and PyPI torchvision does not import "
    "beside the CPU torch 2.13 wheel; score its PHash from a side venv with `python -m evaluation.imagededup_baseline`"
)


def imagededup_status() -> str | None:
    """None when imagededup imports, else why it cannot be used here."""
    try:
        import imagededup.methods  # noqa: F401
    except Exception as error:  # ImportError, or a broken torchvision raising anything at import
        return f"not installable here: {IMAGEDEDUP_NOTE} ({type(error).__name__})"
    return None


def _pairs_per_second(compare: Callable[[], np.ndarray], n_pairs: int, budget_s: float = 0.3) -> float:
    """Comparisons per second given the signatures (median of repeated runs over all pairs)."""
    timings = []
    started = time.perf_counter()
    while time.perf_counter() - started < budget_s or len(timings) < 3:
        t0 = time.perf_counter()
        compare()
        timings.append(time.perf_counter() - t0)
    return n_pairs / max(float(np.median(timings)), 1e-9)


# ---------------------------------------------------------------------------------------- writing the thresholds

TUNED_MARK = "# tuned:"
_DEDUP_KEYS = ("phash_max_distance", "dhash_edge_max_distance", "hsv_chi2_max")
_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")


def _header_name(line: str) -> str | None:
    match = _HEADER.match(line)
    return re.sub(r"\s*\.\s*", ".", match.group(1)) if match else None


def _format_value(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 4))


def _table_span(lines: list[str], name: str) -> tuple[int, int] | None:
    """(header line, end) of table `name`; end is the next header line (or len)."""
    for h, line in enumerate(lines):
        if _header_name(line) == name:
            end = next((k for k in range(h + 1, len(lines)) if _header_name(lines[k]) is not None), len(lines))
            return h, end
    return None


def render_dedup_table(text: str, category: str | None, t: DedupThresholds, notes: Sequence[str]) -> str:
    """`text` (a categories file) with the dedup table of `category` (None: [defaults.dedup]) set to `t`.

    Everything else is kept byte for byte, including the table's own comments and each key's trailing comment;
    the previous `# tuned:` lines of that table are replaced by `notes`.
    """
    table = "defaults.dedup" if category is None else f"categories.{category}.dedup"
    values = {
        "phash_max_distance": t.phash_max_distance,
        "dhash_edge_max_distance": t.dhash_edge_max_distance,
        "hsv_chi2_max": float(t.hsv_chi2_max),
    }
    note_lines = [f"{TUNED_MARK} {note}\n" if note else f"{TUNED_MARK}\n" for note in notes]
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    span = _table_span(lines, table)
    if span is None:
        parent = "defaults" if category is None else f"categories.{category}"
        parent_span = _table_span(lines, parent)
        if parent_span is None:
            raise ValueError(f"no [{parent}] table to add [{table}] to")
        insert_at = parent_span[1]
        while insert_at > parent_span[0] + 1 and not lines[insert_at - 1].strip():
            insert_at -= 1
        block = ["\n", f"[{table}]\n", *note_lines, *(f"{key} = {_format_value(values[key])}\n" for key in _DEDUP_KEYS)]
        return "".join(lines[:insert_at] + block + lines[insert_at:])

    header, end = span
    body = [line for line in lines[header + 1 : end] if not line.lstrip().startswith(TUNED_MARK)]
    missing = list(_DEDUP_KEYS)
    for k, line in enumerate(body):
        match = re.match(r"^(\s*)([A-Za-z0-9_]+)(\s*=\s*)([^#\n]*?)(\s*)(#.*)?\n$", line)
        if match and match.group(2) in values:
            indent, key, equals, old, spaces, comment = match.groups()
            new = _format_value(values[key])
            if comment:  # keep the comment's column where the new value leaves room
                spaces = " " * max(1, len(old) + len(spaces) - len(new))
                body[k] = f"{indent}{key}{equals}{new}{spaces}{comment}\n"
            else:
                body[k] = f"{indent}{key}{equals}{new}\n"
            missing.remove(key)
    last_key = max((k for k, line in enumerate(body) if re.match(r"^\s*[A-Za-z0-9_]+\s*=", line)), default=-1)
    body[last_key + 1 : last_key + 1] = [f"{key} = {_format_value(values[key])}\n" for key in missing]
    first_key = next((k for k, line in enumerate(body) if re.match(r"^\s*[A-Za-z0-9_]+\s*=", line)), len(body))
    body[first_key:first_key] = note_lines
    return "".join(lines[: header + 1] + body + lines[end:])


def write_dedup_thresholds(path: Path, category: str | None, t: DedupThresholds, notes: Sequence[str]) -> list[str]:
    """Rewrite the dedup table in the categories file `path` (atomically), after checking that the result parses
    and yields exactly `t`. Returns the categories whose own [<name>.dedup] table still overrides a field."""
    text = path.read_text(encoding="utf-8")
    new_text = render_dedup_table(text, category, t, notes)
    document = tomllib.loads(new_text)
    catalog = parse_catalog(document)
    table = document["defaults"]["dedup"] if category is None else document["categories"][category]["dedup"]
    written = DedupThresholds(**{key: table[key] for key in _DEDUP_KEYS})
    if written != t:
        raise AssertionError(f"rendered {written}, wanted {t}")
    if category is not None and catalog.get(category).dedup != t:
        raise AssertionError(f"category {category!r} resolves to {catalog.get(category).dedup}, wanted {t}")
    shadowing = []
    if category is None:
        shadowing = [
            name
            for name, table in document.get("categories", {}).items()
            if set(table.get("dedup", {})) & set(t.__dict__)
        ]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)
    return shadowing


# ---------------------------------------------------------------------------------------------------- commands


def _our_distances(pairs: PairSet, sig: ProductionSignatures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        hamming(sig.phash[pairs.a], sig.phash[pairs.b]),
        hamming(sig.dhash_edge[pairs.a], sig.dhash_edge[pairs.b]),
        chi2_rows(sig.hsv_hist[pairs.a], sig.hsv_hist[pairs.b]),
    )


def configured_predictions(pairs: PairSet, distances: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """The gateway's decision with the thresholds it reads now (each pair's category, defaults for unknown ones)."""
    catalog = load_catalog()
    predicted = np.zeros(len(pairs), dtype=bool)
    categories = np.array(pairs.categories)
    for name in sorted(set(pairs.categories)):
        mask = categories == name
        t = catalog.resolve(name)[0].dedup
        predicted[mask] = accept(tuple(d[mask] for d in distances), t)
    return predicted


def _cv_single(distances: np.ndarray, pairs: PairSet, rule: Rule, folds: int) -> Metrics:
    return cross_validate(
        lambda train: best_threshold(distances[train], pairs.labels[train], *rule).threshold,
        lambda threshold, test: distances[test] <= threshold,
        pairs.labels,
        pairs.groups,
        folds,
    )


def _cv_ensemble(distances: tuple, pairs: PairSet, rule: Rule, folds: int) -> Metrics:
    return cross_validate(
        lambda train: (
            tune_thresholds(
                *(d[train] for d in distances),
                pairs.labels[train],
                rule.min_precision,
                recall_tolerance=rule.recall_tolerance,
            ).thresholds
        ),
        lambda t, test: accept(tuple(d[test] for d in distances), t),
        pairs.labels,
        pairs.groups,
        folds,
    )


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def describe_pairs(pairs: PairSet) -> str:
    parts = []
    for meta in pairs.metas:
        parts.append(
            f"{meta['source_name']} ({meta['pairs']} pairs: {meta['positives']} duplicates / {meta['negatives']} "
            f"distinct, from {meta['source_images']} images of {meta['source']}, seed {meta['seed']})"
        )
    return "; ".join(parts)


def kind_breakdown(pairs: PairSet, predictions: dict[str, np.ndarray]) -> list[str]:
    """Markdown rows: per pair kind (main transformation or negative kind), the share called duplicate."""
    primary = np.array([kind.split("+")[0] for kind in pairs.kinds])
    lines = [
        "| label | kind | pairs | " + " | ".join(predictions) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in predictions) + " |",
    ]
    for label in (1, 0):
        for kind in sorted(set(primary[pairs.labels == label])):
            mask = (primary == kind) & (pairs.labels == label)
            shares = " | ".join(f"{predicted[mask].mean():.1%}" for predicted in predictions.values())
            lines.append(f"| {'duplicate' if label else 'distinct'} | {kind} | {int(mask.sum())} | {shares} |")
    return lines


def evaluate(directories: Sequence[Path], rule: Rule, with_cnn: bool, folds: int, baselines: bool = True) -> dict:
    pairs = load_pairs(directories)
    n_images = len(pairs.files)
    print(f"{len(pairs)} pairs over {n_images} images: {describe_pairs(pairs)}", file=sys.stderr)
    sig = production_signatures(pairs.files, with_cnn)
    ours = _our_distances(pairs, sig)
    labels = pairs.labels
    s = sig.seconds
    ours_images_s = n_images / (s["read_s"] + s["dali_s"] + s["hash_s"])
    ensemble_pairs_s = _pairs_per_second(
        lambda: accept(_our_distances(pairs, sig), load_catalog().default.dedup), len(pairs)
    )
    rows: list[dict] = []
    predictions: dict[str, np.ndarray] = {}

    configured = configured_predictions(pairs, ours)
    predictions["ours, configured"] = configured
    default_t = load_catalog().default.dedup
    rows.append(
        {
            "method": "ours: pHash + dHash-edge + colour chi2, configured thresholds (categories.toml)",
            "threshold": f"{default_t.phash_max_distance} / {default_t.dhash_edge_max_distance} / "
            f"{default_t.hsv_chi2_max:g}",
            "metrics": confusion(labels, configured),
            "cv": None,
            "pairs_s": ensemble_pairs_s,
            "images_s": ours_images_s,
        }
    )
    point = tune_thresholds(*ours, labels, rule.min_precision, recall_tolerance=rule.recall_tolerance)
    predictions["ours, tuned here"] = accept(ours, point.thresholds)
    t = point.thresholds
    rows.append(
        {
            "method": "ours, thresholds tuned on these pairs",
            "threshold": f"{t.phash_max_distance} / {t.dhash_edge_max_distance} / {t.hsv_chi2_max:g}",
            "metrics": point.metrics,
            "cv": _cv_ensemble(ours, pairs, rule, folds),
            "pairs_s": ensemble_pairs_s,
            "images_s": ours_images_s,
        }
    )
    for name, distances, signature in (
        ("ours alone: pHash of the content box", ours[0], sig.phash),
        ("ours alone: dHash-edge of the content box", ours[1], sig.dhash_edge),
    ):
        single = best_threshold(distances, labels, *rule)
        rows.append(
            {
                "method": name,
                "threshold": f"{single.threshold:g}",
                "metrics": single.metrics,
                "cv": _cv_single(distances, pairs, rule, folds),
                "pairs_s": _pairs_per_second(lambda sg=signature: hamming(sg[pairs.a], sg[pairs.b]), len(pairs)),
                "images_s": ours_images_s,
                "met": single.met,
            }
        )
    single = best_threshold(ours[2], labels, *rule)
    rows.append(
        {
            "method": "ours alone: colour-histogram chi2 (foreground, tone-normalised)",
            "threshold": f"{single.threshold:.4f}",
            "metrics": single.metrics,
            "cv": _cv_single(ours[2], pairs, rule, folds),
            "pairs_s": _pairs_per_second(lambda: chi2_rows(sig.hsv_hist[pairs.a], sig.hsv_hist[pairs.b]), len(pairs)),
            "images_s": ours_images_s,
            "met": single.met,
        }
    )

    hash_seconds: dict[str, float] = {}
    if baselines:
        print("imagehash baselines ...", file=sys.stderr)
        hashes, hash_seconds = imagehash_signatures(pairs.files)
        for name in IMAGEHASH_METHODS:
            distances = hamming(hashes[name][pairs.a], hashes[name][pairs.b])
            single = best_threshold(distances, labels, *rule)
            predictions[f"imagehash {name}"] = distances <= single.threshold
            rows.append(
                {
                    "method": f"imagehash {name} (full image, best threshold)",
                    "threshold": f"{single.threshold:g}",
                    "metrics": single.metrics,
                    "cv": _cv_single(distances, pairs, rule, folds),
                    "pairs_s": _pairs_per_second(lambda h=hashes[name]: hamming(h[pairs.a], h[pairs.b]), len(pairs)),
                    "images_s": n_images / (hash_seconds["decode_s"] + hash_seconds[name]),
                    "met": single.met,
                }
            )
        status = imagededup_status()
        for name in ("PHash", "CNN"):
            rows.append({"method": f"imagededup {name}", "unavailable": status or "imported but not wired"})

    if sig.embeddings is not None:
        emb = sig.embeddings

        def cosine_distance() -> np.ndarray:
            return 1.0 - np.einsum("ij,ij->i", emb[pairs.a], emb[pairs.b])

        distances = cosine_distance()
        single = best_threshold(distances, labels, *rule)
        predictions["CNN cosine"] = distances <= single.threshold
        rows.append(
            {
                "method": "CNN cosine, our EfficientNet-Lite0 backbone (best threshold)",
                "threshold": f"cos >= {1 - single.threshold:.4f}",
                "metrics": single.metrics,
                "cv": _cv_single(distances, pairs, rule, folds),
                "pairs_s": _pairs_per_second(cosine_distance, len(pairs)),
                "images_s": n_images / (s["read_s"] + s["dali_s"] + s["cnn_s"]),
                "met": single.met,
            }
        )

    lines = [
        f"Pairs: {describe_pairs(pairs)}. {len(pairs)} pairs, {int(labels.sum())} duplicates, {n_images} images.",
        f"Precision-first: best = {rule.describe()}. CV = {folds}-fold held-out "
        "(folds grouped by source product), thresholds fitted on the other folds.",
        "",
        "| method | threshold | precision | recall | F1 | CV precision | CV recall | pairs/s | images/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "unavailable" in row:
            lines.append(f"| {row['method']} | {row['unavailable']} | | | | | | | |")
            continue
        m, cv = row["metrics"], row["cv"]
        flag = "" if row.get("met", True) else " (target not reached)"
        lines.append(
            f"| {row['method']}{flag} | {row['threshold']} | {_fmt(m.precision)} | {_fmt(m.recall)} | {_fmt(m.f1)} | "
            f"{_fmt(cv.precision if cv else None)} | {_fmt(cv.recall if cv else None)} | {_rate(row['pairs_s'])} | "
            f"{_rate(row['images_s'])} |"
        )
    lines += [
        "",
        f"images/s: from file bytes to signature on {os.cpu_count()} CPU cores (ours and CNN: DALI CPU preprocess, "
        f"{n_images / max(s['dali_s'], 1e-9):,.0f} images/s alone, then hashing "
        f"{n_images / max(s['hash_s'], 1e-9):,.0f}/s or the backbone"
        + (
            f"; imagehash: PIL decode {n_images / max(hash_seconds['decode_s'], 1e-9):,.0f}/s then the hash"
            if hash_seconds
            else ""
        )
        + "). pairs/s: comparisons of precomputed signatures (numpy, vectorised over all pairs). (target not "
        "reached): no threshold of that method reaches the precision target; the row shows its most precise "
        "threshold that accepts any pair.",
        "",
        "Share of pairs called duplicate, per kind:",
        "",
        *kind_breakdown(pairs, predictions),
    ]
    report = "\n".join(lines)
    print(report)
    result = {
        "pairs": [meta for meta in pairs.metas],
        "rule": rule._asdict(),
        "folds": folds,
        "seconds": {**sig.seconds, **{f"imagehash_{k}": v for k, v in hash_seconds.items()}},
        "rows": [
            {
                k: (
                    {**v.__dict__, "precision": v.precision, "recall": v.recall, "f1": v.f1}
                    if isinstance(v, Metrics)
                    else v
                )
                for k, v in row.items()
            }
            for row in rows
        ],
        "markdown": report,
    }
    return result


def _options(category: str | None, rule: Rule) -> str:
    """The non-default tune options, as typed."""
    options = f" --category {category}" if category else ""
    if rule.min_precision != DEFAULT_MIN_PRECISION:
        options += f" --min-precision {rule.min_precision:g}"
    if rule.recall_tolerance != DEFAULT_RECALL_TOLERANCE:
        options += f" --recall-tolerance {rule.recall_tolerance:g}"
    return options


def _shown_path(path: str | None) -> str:
    """A path relative to the project root when it is near it (../shared/data/...), else as given."""
    if not path:
        return "none"
    relative = os.path.relpath(path, PROJECT_ROOT)
    return relative if not relative.startswith("../..") else path


def tune(
    directories: Sequence[Path],
    category: str | None,
    rule: Rule,
    folds: int,
    write: bool,
    categories_file: Path,
) -> OperatingPoint:
    pairs = load_pairs(directories)
    if category is not None:
        pairs = pairs.subset(np.array(pairs.categories) == category)
        if not len(pairs):
            raise SystemExit(f"no pairs of category {category!r}")
    sig = production_signatures(pairs.files, with_cnn=False)
    distances = _our_distances(pairs, sig)
    point = tune_thresholds(*distances, pairs.labels, rule.min_precision, recall_tolerance=rule.recall_tolerance)
    cv = _cv_ensemble(distances, pairs, rule, folds)
    t, m = point.thresholds, point.metrics
    print(f"{len(pairs)} pairs ({int(pairs.labels.sum())} duplicates): {describe_pairs(pairs)}")
    print(
        f"operating point ({rule.describe()}{'' if point.met else '; precision NOT REACHED'}): "
        f"phash_max_distance={t.phash_max_distance} dhash_edge_max_distance={t.dhash_edge_max_distance} "
        f"hsv_chi2_max={t.hsv_chi2_max:g} -> precision {m.precision:.4f} recall {m.recall:.4f} F1 {m.f1:.4f} "
        f"(tp {m.tp}, fp {m.fp}, fn {m.fn}, tn {m.tn}); {folds}-fold CV precision {cv.precision:.4f} "
        f"recall {cv.recall:.4f}"
    )
    print("\n".join(kind_breakdown(pairs, {"tuned": accept(distances, t)})))
    if write:
        if not point.met:
            raise SystemExit(f"precision {rule.min_precision} not reachable on these pairs: nothing written")
        notes = [
            f"written by `python -m evaluation.dedup_pairs tune --write{_options(category, rule)}`"
            f" ({time.strftime('%Y-%m-%d')}, generator v{GENERATOR_VERSION})",
            f"on {len(pairs)} labelled pairs ({int(pairs.labels.sum())} duplicates):",
            *(
                line
                for meta in pairs.metas
                for line in (
                    f"  {meta['source_name']}: {meta['pairs']} pairs from {meta['source_images']} images of "
                    f"{_shown_path(meta['source'])}, seed {meta['seed']}",
                    f"    manifest {_shown_path(meta['manifest'])}",
                )
            ),
            f"precision {m.precision:.4f}, recall {m.recall:.4f} at these thresholds; {folds}-fold CV precision "
            f"{cv.precision:.4f}, recall {cv.recall:.4f}",
            f"rule: {rule.describe()}",
        ]
        shadowing = write_dedup_thresholds(categories_file, category, t, notes)
        print(f"wrote [{'defaults' if category is None else 'categories.' + category}.dedup] in {categories_file}")
        if shadowing:
            print(f"note: these categories keep their own dedup overrides: {', '.join(shadowing)}")
    return point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.dedup_pairs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write labelled pairs (CSV + images) from a folder of images")
    gen.add_argument("--source", type=Path, required=True, help="folder of images (searched recursively)")
    gen.add_argument(
        "--manifest",
        type=Path,
        help="CSV file,style,category,color,view (or the grocery dataset's classes.csv); default: SOURCE/manifest.csv "
        "if present, else every image is its own product",
    )
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--pairs", type=int, help="total pairs, half duplicates (default: 6 per image, at most 4000)")
    gen.add_argument("--category", default="default", help="gateway category the pairs belong to (for tune)")
    gen.add_argument("--name", help="short name of the source in reports (default: the folder name)")

    ev = commands.add_parser("evaluate", help="precision/recall/F1 and throughput of ours and the baselines")
    ev.add_argument("--pairs", type=Path, nargs="+", required=True, help="one or more pairs directories")
    ev.add_argument("--min-precision", type=float, default=DEFAULT_MIN_PRECISION)
    ev.add_argument("--recall-tolerance", type=float, default=DEFAULT_RECALL_TOLERANCE, help="0: strict max recall")
    ev.add_argument("--folds", type=int, default=5)
    ev.add_argument("--no-cnn", action="store_true", help="skip the CNN cosine baseline (needs torch)")
    ev.add_argument("--ours-only", action="store_true", help="only our ensemble (e.g. thresholds on held-out pairs)")
    ev.add_argument("--json", type=Path, help="also write the results here (default: PAIRS[0]/evaluation.json)")

    tu = commands.add_parser("tune", help="precision-first joint sweep of the three dedup thresholds")
    tu.add_argument("--pairs", type=Path, nargs="+", required=True)
    tu.add_argument("--category", help="only pairs of this category; --write then sets [categories.NAME.dedup]")
    tu.add_argument("--min-precision", type=float, default=DEFAULT_MIN_PRECISION)
    tu.add_argument(
        "--recall-tolerance",
        type=float,
        default=DEFAULT_RECALL_TOLERANCE,
        help="recalls within this of the best are ties, resolved to the stricter thresholds (0: strict max recall)",
    )
    tu.add_argument("--folds", type=int, default=5)
    tu.add_argument("--write", action="store_true", help="store the thresholds in the categories file")
    tu.add_argument(
        "--categories-file",
        type=Path,
        default=Path(os.environ.get(CATEGORIES_FILE_ENV) or DEFAULT_CATEGORIES_FILE),
        help="the file the gateway reads ($IMGSEL_CATEGORIES_FILE or contract/categories.toml)",
    )
    args = parser.parse_args(argv)

    if args.command == "generate":
        meta = generate(
            args.source,
            args.out,
            manifest=args.manifest,
            seed=args.seed,
            n_pairs=args.pairs,
            category=args.category,
            source_name=args.name,
        )
        print(json.dumps(meta, indent=2))
    elif args.command == "evaluate":
        rule = Rule(args.min_precision, args.recall_tolerance)
        with_cnn = not (args.no_cnn or args.ours_only)
        result = evaluate(args.pairs, rule, with_cnn, args.folds, baselines=not args.ours_only)
        out = args.json or args.pairs[0] / "evaluation.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {out}", file=sys.stderr)
    else:
        rule = Rule(args.min_precision, args.recall_tolerance)
        tune(args.pairs, args.category, rule, args.folds, args.write, args.categories_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
