"""`audit`: distinct-labelled pairs that are one photograph. A shop's sample data sometimes files one photo under two
colours or two views (the Magento catalog's `wsh05-yellow_main.jpg` and `wsh05-purple_main.jpg` differ by 0.5 grey
levels on average), so a `colourway` or `view` pair can be a true duplicate labelled distinct; no image signal can
separate it, and it caps every method's precision alike.

The audit replays the pairs directory's plan from its meta.json (evaluation.dedup.generate.planned_pairs: same
source, manifest, seed and pair count, so the same draws) and compares the two originals of every real negative
(the synthetic ones, recolour and region, are edits of one photo by design) at the planning preview size. It writes
the pair ids it finds to `same_photo.json` in the pairs directory; `evaluate` and `tune` with `--exclude-same-photo`
leave them out (evaluation.dedup.pairset.load_pairs).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.dedup.generate import planned_pairs, preview_of
from evaluation.dedup.pairset import META_FILE, SAME_PHOTO_FILE

# Mean absolute difference (0-255, RGB previews of equal size) below which two originals are one photograph: JPEG
# re-saves of one photo measure under 1; the closest real colourways of the catalog (a digital recolour of a
# garment that fills a fifth of the frame) measure above 5.
SAME_PHOTO_MAX_MEAN_DIFFERENCE = 2.0
# recropped_photo's tolerance, on the object boxes (each picture cropped to what differs from its border colour,
# both resampled to one square): one photograph re-cropped and re-scaled by its shop (AbanteCart's abante_103_100157
# and _100159) measures 2.85; the closest two different views of one products/ product, 13.4 (a hat seen from two
# sides).
SAME_PHOTO_MAX_BOXED_DIFFERENCE = 6.0
BOXED_SIDE = 64
SYNTHETIC_KINDS = ("recolour", "region")


def mean_difference(a: Image.Image, b: Image.Image) -> float | None:
    """Mean absolute RGB difference (0-255) of two previews of equal size; None for different sizes."""
    if a.size != b.size:
        return None
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@lru_cache(maxsize=1024)
def _file_preview(path: Path) -> Image.Image:
    with Image.open(path) as file:
        return preview_of(file.convert("RGB"))


@lru_cache(maxsize=1024)
def _boxed_preview(path: Path) -> Image.Image:
    """The file on white, cropped to its object box (the preprocess model's: preprocessing.runner.object_bbox),
    BOXED_SIDE square."""
    from evaluation.placeholder_data import on_white
    from preprocessing.runner import object_bbox

    with Image.open(path) as file:
        picture = on_white(file)
    picture.thumbnail((4 * BOXED_SIDE, 4 * BOXED_SIDE), Image.Resampling.BOX)
    top, bottom, left, right = object_bbox(np.asarray(picture))
    if bottom > top and right > left:
        picture = picture.crop((left, top, right, bottom))
    return picture.resize((BOXED_SIDE, BOXED_SIDE), Image.Resampling.BOX)


def same_photo(a: Path, b: Path) -> bool:
    """Two image files are one photograph (at the audit's preview size and tolerance)."""
    difference = mean_difference(_file_preview(a), _file_preview(b))
    return difference is not None and difference < SAME_PHOTO_MAX_MEAN_DIFFERENCE


def recropped_photo(a: Path, b: Path) -> bool:
    """Two image files are one photograph re-cropped or re-scaled (their foreground boxes alike). Looser than
    same_photo about framing and so about colour too (a digital recolour of part of a garment passes): for telling
    a shop's views of one product apart, not colourways."""
    return mean_difference(_boxed_preview(a), _boxed_preview(b)) < SAME_PHOTO_MAX_BOXED_DIFFERENCE


def same_photo_pairs(pairs_dir: Path) -> list[dict]:
    """The distinct-labelled pairs of `pairs_dir` whose two originals are one photograph, with their difference."""
    meta = json.loads((pairs_dir / META_FILE).read_text(encoding="utf-8"))
    manifest = Path(meta["manifest"]) if meta.get("manifest") else None
    images, previews, plans, _ = planned_pairs(
        Path(meta["source"]), manifest, meta["seed"], meta.get("requested_pairs", meta["pairs"])
    )
    index_of = {image.path: i for i, image in enumerate(images)}
    found = []
    for pair_id, plan in enumerate(plans):
        if plan.label or plan.kind.split("+")[0] in SYNTHETIC_KINDS or plan.a == plan.b:
            continue
        difference = mean_difference(previews[index_of[plan.a]], previews[index_of[plan.b]])
        if difference is not None and difference < SAME_PHOTO_MAX_MEAN_DIFFERENCE:
            found.append(
                {"pair_id": pair_id, "kind": plan.kind, "a": plan.a, "b": plan.b, "mean_difference": difference}
            )
    return found


def audit(directories: list[Path]) -> dict[str, list[dict]]:
    """same_photo_pairs of each directory, written to its same_photo.json and printed."""
    result = {}
    for directory in directories:
        found = same_photo_pairs(directory)
        (directory / SAME_PHOTO_FILE).write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
        result[str(directory)] = found
        print(f"{directory}: {len(found)} distinct-labelled pairs are one photograph")
        for pair in found:
            print(
                f"  pair {pair['pair_id']} ({pair['kind']}): {pair['a']} ~ {pair['b']} ({pair['mean_difference']:.2f})"
            )
    return result
