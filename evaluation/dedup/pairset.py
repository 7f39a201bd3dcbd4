"""A pairs directory on disk (`pairs.csv`, `meta.json`, `images/`) and its loader: the format `generate` writes and
every evaluation reads. Originals are referenced as `source/<path relative to the source folder>`."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 1
PAIRS_FILE = "pairs.csv"
META_FILE = "meta.json"
IMAGES_DIR = "images"
SAME_PHOTO_FILE = "same_photo.json"  # written by `audit`: distinct-labelled pairs that are one photograph
SOURCE_PREFIX = "source/"
PAIR_COLUMNS = ("pair_id", "label", "kind", "a", "b", "a_recipe", "b_recipe", "group", "category", "source")


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


def load_pairs(directories: Sequence[Path], exclude_same_photo: bool = False) -> PairSet:
    """The pairs of every directory, in order; `exclude_same_photo`: without the pairs each directory's
    same_photo.json lists (evaluation.dedup.audit)."""
    files: list[Path] = []
    index: dict[Path, int] = {}
    labels, kinds, groups, categories, a_index, b_index, metas = [], [], [], [], [], [], []
    excluded: list[bool] = []

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
        same_photo = _same_photo_ids(directory) if exclude_same_photo else set()
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
                excluded.append(exclude_same_photo and int(row["pair_id"]) in same_photo)
                categories.append(row["category"])
    if not labels:
        raise ValueError("no pairs found")
    pairs = PairSet(
        labels=np.array(labels, dtype=np.int8),
        kinds=kinds,
        groups=groups,
        categories=categories,
        a=np.array(a_index),
        b=np.array(b_index),
        files=files,
        metas=metas,
    )
    return pairs.subset(~np.array(excluded)) if any(excluded) else pairs


def _same_photo_ids(directory: Path) -> set[int]:
    path = directory / SAME_PHOTO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run `python -m evaluation.dedup audit --pairs {directory}` first")
    return {pair["pair_id"] for pair in json.loads(path.read_text(encoding="utf-8"))}


def describe_pairs(pairs: PairSet) -> str:
    parts = []
    for meta in pairs.metas:
        parts.append(
            f"{meta['source_name']} ({meta['pairs']} pairs: {meta['positives']} duplicates / {meta['negatives']} "
            f"distinct, from {meta['source_images']} images of {meta['source']}, seed {meta['seed']})"
        )
    return "; ".join(parts)
