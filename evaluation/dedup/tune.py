"""`tune`: the precision-first joint sweep of the three thresholds on labelled pairs, optionally written into the
categories file the gateway reads."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from contract.categories_file import load_catalog
from evaluation.dedup.evaluate import kind_breakdown
from evaluation.dedup.metrics import DEFAULT_MIN_PRECISION, DEFAULT_RECALL_TOLERANCE, Metrics, Rule
from evaluation.dedup.pairset import GENERATOR_VERSION, PairSet, describe_pairs, load_pairs
from evaluation.dedup.signatures import our_distances, production_signatures
from evaluation.dedup.thresholds_file import write_dedup_thresholds
from evaluation.dedup.tuning import OperatingPoint, cv_ensemble, tune_thresholds
from gateway.hashing import within_thresholds

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _options(category: str | None, rule: Rule, exclude_same_photo: bool = False) -> str:
    """The non-default tune options, as typed."""
    options = f" --category {category}" if category else ""
    if exclude_same_photo:
        options += " --exclude-same-photo"
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
    exclude_same_photo: bool = False,
) -> OperatingPoint:
    pairs = load_pairs(directories, exclude_same_photo)
    if category is not None:
        pairs = pairs.subset(np.array(pairs.categories) == category)
        if not len(pairs):
            raise SystemExit(f"no pairs of category {category!r}")
    sig = production_signatures(pairs.files, with_cnn=False)
    # the tone and framing rescues' settings are not tuned here: the category's configured ones, carried into what is
    # written
    configured = load_catalog(categories_file).resolve(category)[0].dedup
    distances = our_distances(pairs, sig, configured)
    point = tune_thresholds(
        *distances, pairs.labels, rule.min_precision, recall_tolerance=rule.recall_tolerance, rescues=configured
    )
    cv = cv_ensemble(distances, pairs, rule, folds, configured)
    t, m = point.thresholds, point.metrics
    print(f"{len(pairs)} pairs ({int(pairs.labels.sum())} duplicates): {describe_pairs(pairs)}")
    print(
        f"operating point ({rule.describe()}{'' if point.met else '; precision NOT REACHED'}): "
        f"phash_max_distance={t.phash_max_distance} dhash_edge_max_distance={t.dhash_edge_max_distance} "
        f"hsv_chi2_max={t.hsv_chi2_max:g} -> precision {m.precision:.4f} recall {m.recall:.4f} F1 {m.f1:.4f} "
        f"(tp {m.tp}, fp {m.fp}, fn {m.fn}, tn {m.tn}); {folds}-fold CV precision {cv.precision:.4f} "
        f"recall {cv.recall:.4f}"
    )
    print("\n".join(kind_breakdown(pairs, {"tuned": within_thresholds(t, *distances)})))
    if write:
        if not point.met:
            raise SystemExit(f"precision {rule.min_precision} not reachable on these pairs: nothing written")
        notes = _provenance(pairs, category, rule, point, cv, folds, exclude_same_photo)
        shadowing = write_dedup_thresholds(categories_file, category, t, notes)
        print(f"wrote [{'defaults' if category is None else 'categories.' + category}.dedup] in {categories_file}")
        if shadowing:
            print(f"note: these categories keep their own dedup overrides: {', '.join(shadowing)}")
    return point


def _provenance(
    pairs: PairSet,
    category: str | None,
    rule: Rule,
    point: OperatingPoint,
    cv: Metrics,
    folds: int,
    exclude_same_photo: bool = False,
) -> list[str]:
    """The `# tuned:` lines written above the thresholds: command, data, result, rule."""
    m = point.metrics
    return [
        f"written by `python -m evaluation.dedup tune --write{_options(category, rule, exclude_same_photo)}`"
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
