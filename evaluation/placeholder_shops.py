"""Does the learned placeholder score hold on shops it never saw? False-positive rate per shop and per category on the
real product photos of products/, and recall on real placeholders of families it never saw (issue #15).

    python -m evaluation.placeholder_shops [--head build_engines/heads/quality.onnx] [--loso [--lofo]] [--json PATH]

Data: the quality heads' dataset (training.quality_samples: every sample rendered and embedded through the production
path, cached under .cache/quality_heads). Three views:

- served head (`--head`, default the committed one) on the photos of shops whose licence keeps them out of training
  (Smartstore, Thelia, nopCommerce, Commerce Kickstart: never trained on) and on the held-out products of the others;
  real placeholders of families never trained on (nopCommerce, Smartstore; Solidus of placeholders/).
- `--loso` leave-one-shop-out: for each shop that training may use, the head is trained again without every sample
  made from that shop's pictures (its photos and the hard negatives rendered from them), its thresholds chosen again
  on the calibration half without them, and scored on all that shop's photos; `--lofo` the same for each trainable
  placeholder family (its variants and degraded copies left out, recall on all of them). One full training each.

Every rate is at the operating point (score >= 0.5, the threshold chosen on the calibration half at precision 0.99).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.tensors import QUALITY_OUTPUTS
from evaluation.placeholder_mechanisms import head_scores
from training.datasets import DEFAULT_DATA, PRODUCTS, shop_of, shop_photos
from training.quality_calibration import MIN_PRECISION, calibrate
from training.quality_dataset import CACHE_DIR, Dataset, build_dataset
from training.quality_model import STEPS, predict, train
from training.quality_samples import HARD_NEGATIVE_KINDS, PLACEHOLDER_KINDS, build_specs

PLACEHOLDER = QUALITY_OUTPUTS.index("placeholder")
FLAGGED = 0.5


def shop_of_spec(spec) -> str | None:
    """The products/ shop a sample was made from (None: catalog, grocery or rendered)."""
    path = Path(spec.source) if spec.source else None
    return shop_of(path.name) if path is not None and path.parent.name == PRODUCTS.name else None


def family_of_spec(spec) -> str | None:
    return spec.group.removeprefix("real-placeholder:") if spec.group.startswith("real-placeholder:") else None


def counted(flagged: int, n: int) -> dict:
    return {"n": n, "flagged": flagged, "rate": round(flagged / n, 4) if n else None}


def rate(flags: np.ndarray) -> dict:
    return counted(int(flags.sum()), int(flags.size))


def photo_rates(ds: Dataset, scores: np.ndarray, rows: np.ndarray, categories: dict[str, str]) -> dict:
    """False-positive rate of the placeholder score on shop photos `rows`, overall, per shop and per category."""
    flags = scores[rows] >= FLAGGED
    by_shop, by_category = defaultdict(list), defaultdict(list)
    for row, flag in zip(rows, flags):
        name = Path(ds.specs[row].source).name
        by_shop[shop_of(name)].append(flag)
        by_category[categories[name]].append(flag)
    worst = sorted(zip(scores[rows], rows), reverse=True)[:10]
    return {
        "all": rate(flags),
        "by_shop": {k: rate(np.array(v)) for k, v in sorted(by_shop.items())},
        "by_category": {k: rate(np.array(v)) for k, v in sorted(by_category.items())},
        "highest_scores": [[Path(ds.specs[r].source).name, round(float(s), 3)] for s, r in worst],
    }


def served_view(ds: Dataset, scores: np.ndarray, categories: dict[str, str], trainable_shops: set[str]) -> dict:
    shop_rows = ds.rows(kinds=("shop",))
    unseen = np.array([r for r in shop_rows if shop_of_spec(ds.specs[r]) not in trainable_shops])
    seen_test = np.array([r for r in ds.rows("test", ("shop",)) if shop_of_spec(ds.specs[r]) in trainable_shops])
    placeholders = ds.rows("test", PLACEHOLDER_KINDS)
    by_family = defaultdict(list)
    for row in placeholders:
        by_family[family_of_spec(ds.specs[row]) or ds.specs[row].kind].append(scores[row] >= FLAGGED)
    return {
        "unseen_shops_photos": photo_rates(ds, scores, unseen, categories),
        "trainable_shops_test_products": photo_rates(ds, scores, seen_test, categories),
        "test_hard_negatives_by_kind": {
            kind: rate(scores[ds.rows("test", (kind,))] >= FLAGGED) for kind in HARD_NEGATIVE_KINDS[1:]
        },
        "test_placeholders_recall_by_family_or_kind": {k: rate(np.array(v)) for k, v in sorted(by_family.items())},
        "test_degraded_placeholders_recall": rate(scores[ds.rows("test", ("ph_degraded",))] >= FLAGGED),
    }


def retrained_scores(ds: Dataset, left_out: np.ndarray, min_precision: float, steps: int = STEPS) -> np.ndarray:
    """Placeholder scores of every sample from a head trained and calibrated without the rows in `left_out`."""
    keep = np.ones(len(ds.specs), bool)
    keep[left_out] = False
    train_rows = np.intersect1d(ds.rows("train"), np.flatnonzero(keep))
    calib_rows = np.intersect1d(ds.rows("calibration"), np.flatnonzero(keep))
    head = train(ds.embeddings[train_rows], ds.features[train_rows], ds.labels[train_rows], steps=steps)
    calibrate(head, ds.embeddings[calib_rows], ds.features[calib_rows], ds.labels[calib_rows], min_precision)
    return predict(head, ds.embeddings, ds.features)[:, PLACEHOLDER]


def leave_one_out(
    ds: Dataset,
    categories: dict[str, str],
    trainable_shops: set[str],
    min_precision: float,
    families: bool = True,
    steps: int = STEPS,
) -> dict:
    """Leave-one-shop-out photo rates (and, with `families`, leave-one-family-out placeholder recall)."""
    shops, by_family = {}, {}
    for shop in sorted(trainable_shops):
        left_out = np.array([i for i, s in enumerate(ds.specs) if shop_of_spec(s) == shop])
        scores = retrained_scores(ds, left_out, min_precision, steps)
        photos = np.array([i for i in left_out if ds.specs[i].kind == "shop"])
        shops[shop] = photo_rates(ds, scores, photos, categories)
        print(json.dumps({"left_out_shop": shop, **shops[shop]["all"]}), flush=True)
    trainable_families = sorted(
        {family_of_spec(s) for s in ds.specs if s.kind == "ph_shop" and s.role == "train"} - {None}
    )
    for family in trainable_families if families else []:
        left_out = np.array([i for i, s in enumerate(ds.specs) if family_of_spec(s) == family])
        scores = retrained_scores(ds, left_out, min_precision, steps)
        by_family[family] = {
            "variants": rate(scores[left_out] >= FLAGGED),
            "originals_on_white": rate(
                np.array([scores[i] >= FLAGGED for i in left_out if ds.specs[i].key.endswith(":0")])
            ),
        }
        print(json.dumps({"left_out_family": family, **by_family[family]["variants"]}), flush=True)
    by_category = defaultdict(lambda: [0, 0])
    for view in shops.values():
        for category, r in view["by_category"].items():
            by_category[category][0] += r["flagged"]
            by_category[category][1] += r["n"]
    return {
        "shops": shops,
        "all_left_out_photos": counted(
            sum(v["all"]["flagged"] for v in shops.values()), sum(v["all"]["n"] for v in shops.values())
        ),
        "by_category": {k: counted(f, n) for k, (f, n) in sorted(by_category.items())},
        "placeholder_families": by_family,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--head", type=Path, default=HEADS_DIR / "quality.onnx", help="the served quality head")
    parser.add_argument("--loso", action="store_true", help="also leave-one-shop-out (one training per shop)")
    parser.add_argument("--lofo", action="store_true", help="with --loso: also leave-one-placeholder-family-out")
    parser.add_argument("--min-precision", type=float, default=MIN_PRECISION)
    parser.add_argument("--cache", type=Path, default=CACHE_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    photos = shop_photos(args.data)
    if not photos:
        print(f"no products/ under {args.data}: nothing to measure")
        return 2
    categories = {p.path.name: p.category for p in photos}
    trainable_shops = {p.shop for p in photos if p.trainable}
    ds = build_dataset(build_specs(args.data), args.cache)
    scores = head_scores(ds.embeddings, ds.features, args.head)
    report = {"head": str(args.head), "served": served_view(ds, scores, categories, trainable_shops)}
    print(json.dumps(report, indent=1), flush=True)
    if args.loso:
        report["leave_one_out"] = leave_one_out(ds, categories, trainable_shops, args.min_precision, args.lofo)
        print(json.dumps(report["leave_one_out"], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
