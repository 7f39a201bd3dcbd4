"""The source photos pairs are made from: a folder of images, optionally with a manifest (file, style, category,
colour, view) or the grocery dataset's classes.csv, and a cheap colour/layout statistic for finding look-alikes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.datasets import IMAGE_SUFFIXES


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
