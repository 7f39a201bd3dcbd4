"""`generate`: labelled pairs from a folder of photos, written as a pairs directory (evaluation.dedup.pairset)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.dedup.pairset import (
    GENERATOR_VERSION,
    IMAGES_DIR,
    META_FILE,
    PAIR_COLUMNS,
    PAIRS_FILE,
    SOURCE_PREFIX,
)
from evaluation.dedup.planning import PlannedPair, plan_pairs
from evaluation.dedup.recipes import apply_recipe
from evaluation.dedup.sources import folder_images, layout_statistic, load_manifest

PREVIEW_SIDE = 256  # planning (look-alike statistic, synthetic edits) works on small copies


def preview_of(picture: Image.Image) -> Image.Image:
    """The small copy planning works on (PREVIEW_SIDE on the longer side)."""
    preview = picture.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BOX)
    return preview


def planned_pairs(
    source: Path, manifest: Path | None, seed: int, n_pairs: int | None
) -> tuple[list, list[Image.Image], list[PlannedPair], Callable[[int], Image.Image]]:
    """(source images, their previews, the planned pairs, a cached loader of an original by index): everything
    `generate` draws from `seed`, so a pairs directory's plan can be replayed from its meta.json (evaluation.dedup
    audit)."""
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

    previews = [preview_of(original(i)) for i in range(len(images))]
    stats = np.stack([layout_statistic(preview) for preview in previews])
    return (
        images,
        previews,
        plan_pairs(images, previews, stats, n_pairs, rng, has_manifest=manifest is not None),
        original,
    )


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
    images, previews, plans, original = planned_pairs(source, manifest, seed, n_pairs)
    index_of = {image.path: i for i, image in enumerate(images)}
    rows = _write_images(out, plans, lambda path: original(index_of[path]), sorted_by=lambda p: index_of[p.a])
    for row in rows:
        row.update(category=category, source=source_name or source.name)
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
        "requested_pairs": n_pairs,  # what planned_pairs was asked for (a replay's input), None: the default
        "positives": sum(p.label for p in plans),
        "negatives": sum(1 - p.label for p in plans),
        "source_images": len(images),
        "category": category,
        "kinds": dict(sorted(counts.items())),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _write_images(
    out: Path,
    plans: list[PlannedPair],
    original: Callable[[str], Image.Image],
    sorted_by: Callable[[PlannedPair], int],
) -> list[dict]:
    """Apply every recipe, write the files into out/images (emptied first); the pair rows, in pair order. Pairs are
    visited grouped by `sorted_by` (the source image) so each original is decoded about once."""
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for stale in (out / IMAGES_DIR).iterdir():
        stale.unlink()
    rows: list[dict] = [{} for _ in plans]
    for pair_id in sorted(range(len(plans)), key=lambda k: (sorted_by(plans[k]), k)):
        plan = plans[pair_id]
        row = {"pair_id": pair_id, "label": plan.label, "kind": plan.kind, "group": plan.group}
        for side, path, recipe in (("a", plan.a, plan.a_recipe), ("b", plan.b, plan.b_recipe)):
            if recipe is None:
                row[side] = SOURCE_PREFIX + path
                row[f"{side}_recipe"] = ""
            else:
                data, suffix = apply_recipe(original(path), recipe)
                name = f"{IMAGES_DIR}/{pair_id:05d}_{side}{suffix}"
                (out / name).write_bytes(data)
                row[side] = name
                row[f"{side}_recipe"] = json.dumps(recipe, separators=(",", ":"))
        rows[pair_id] = row
    return rows
