"""Which pairs to make: positives (an image and a re-export of it) and negatives of the hard kinds, chosen from the
source images with a seeded generator (see the package docstring for the mix)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from PIL import Image

from evaluation.dedup.recipes import (
    POSITIVE_KINDS,
    sample_encoding,
    sample_positive_recipe,
    sample_recolour,
    sample_region,
)
from evaluation.dedup.sources import SourceImage

# Share of the negatives per kind; a kind without enough candidates hands its share to `lookalike`, then `nearest`
# (the nearest other products by the statistic, whatever their category), then `other` (random other products).
NEGATIVE_MIX_MANIFEST = {"colourway": 0.30, "view": 0.15, "lookalike": 0.35, "recolour": 0.10, "region": 0.10}
NEGATIVE_MIX_FOLDER = {"lookalike": 0.45, "other": 0.25, "recolour": 0.15, "region": 0.15}
SECOND_OP_PROBABILITY = 0.35  # a positive gets a second, different transformation
BOTH_SIDES_PROBABILITY = 0.25  # a positive pairs two different re-exports of the original
REEXPORT_NEGATIVE_PROBABILITY = 0.5  # a real negative's second image is re-exported
LOOKALIKE_NEIGHBOURS = 3  # same category, other style
NEAREST_NEIGHBOURS = 10  # any other style: where a category has too few look-alikes


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
    """Half positives, half negatives in the kind mix; every random draw comes from `rng`, in a fixed order."""
    n_positive = n_pairs // 2
    n_negative = n_pairs - n_positive
    plans = _positive_plans(images, n_positive, rng)
    mix = NEGATIVE_MIX_MANIFEST if has_manifest else NEGATIVE_MIX_FOLDER
    quotas = {kind: int(round(share * n_negative)) for kind, share in mix.items()}
    quotas[max(mix, key=mix.get)] += n_negative - sum(quotas.values())
    candidates = negative_candidates(images, stats)
    synthetic, spill = _synthetic_negatives(images, previews, quotas, rng)
    real = _real_negative_pairs(images, candidates, quotas, spill, rng)
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


def _positive_plans(images: list[SourceImage], n_positive: int, rng: np.random.Generator) -> list[PlannedPair]:
    """Every positive kind in turn (shuffled rounds) on every image in turn (shuffled rounds)."""
    kinds: list[str] = []
    while len(kinds) < n_positive:
        kinds.extend(rng.permutation(POSITIVE_KINDS).tolist())
    order: list[int] = []
    while len(order) < n_positive:
        order.extend(rng.permutation(len(images)).tolist())
    plans = []
    for kind, i in zip(kinds[:n_positive], order[:n_positive]):
        b_recipe, name = sample_positive_recipe(kind, rng, SECOND_OP_PROBABILITY)
        a_recipe = None
        if rng.random() < BOTH_SIDES_PROBABILITY:
            a_recipe, _ = sample_positive_recipe(str(rng.choice(POSITIVE_KINDS)), rng, 0.0)
        path = images[i].path
        plans.append(PlannedPair(1, name, path, path, a_recipe, b_recipe, images[i].style))
    return plans


def _synthetic_negatives(
    images: list[SourceImage], previews: Sequence[Image.Image], quotas: dict[str, int], rng: np.random.Generator
) -> tuple[dict[str, list[PlannedPair]], int]:
    """(recolour and region plans, how many of their quota they could not supply)."""
    synthetic: dict[str, list[PlannedPair]] = {}
    spill = 0
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
    return synthetic, spill


def _real_negative_pairs(
    images: list[SourceImage],
    candidates: dict[str, list[tuple[int, int]]],
    quotas: dict[str, int],
    spill: int,
    rng: np.random.Generator,
) -> list[tuple[str, tuple[int, int]]]:
    """(kind, image pair) of the real negatives; what a kind cannot supply (`spill`) goes to `lookalike`, then
    `nearest`, then `other`."""
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
    return real
