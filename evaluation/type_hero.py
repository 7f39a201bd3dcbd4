"""Backs called front and the hero (issue #15): the apparel type head's training options and the gateway's hero margin,
measured on the held-out styles of the development catalog (Magento sample data, training.splits).

1. Training options (training.type_heads.TrainingOptions), each a full run of the trainer (shape chosen by CV on
   the training styles, fitted on them, scored on the validation styles): with and without mirrored copies, back
   loss weights, and hard-negative mining (training backs that out-of-fold heads find most front-like weigh more).
2. The hero margin (gateway.decisions.hero) for the kept head: a sweep of min_margin = P(front) - P(back), chosen on
   the calibration half of the validation styles (training.splits.role_of) and reported on the test half and on all
   of them. The hero is scored in the worst input order (every image that may lead is a true front,
   training.type_heads.may_lead) and in a random one, on the catalog's products (style + colour) and on a harder
   set: each product's images plus every back image of its style (other colourways' backs are still backs).

    python -m evaluation.type_hero [--manifest ../shared/data/catalog/manifest.csv] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from contract.categories_file import load_catalog
from training.datasets import DEFAULT_DATA, TypeExamples, types_from_manifest
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings
from training.embeddings import require_decodable
from training.heads import LINEAR, fit_with_mirrors, learned_classes, predict_probabilities
from training.splits import CV_FOLDS, cv_fold, is_validation, role_of
from training.type_heads import TrainingOptions, back_called_front, fit, hero_front_rate

OPTIONS = (
    TrainingOptions(),
    TrainingOptions(mirrors=False),
    TrainingOptions(back_weight=2.0),
    TrainingOptions(back_weight=4.0),
)
HARD_NEGATIVE_WEIGHT = 4.0  # loss weight of a mined back (x its class-balanced weight)
HARD_NEGATIVE_SHARE = 0.25  # the most front-like quarter of the training backs, out of fold
MARGINS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0)


def mined_backs(types: tuple[str, ...], data: TypeExamples, embeddings: np.ndarray) -> np.ndarray:
    """Extra loss weight per image: HARD_NEGATIVE_WEIGHT for the training backs whose out-of-fold P(front) (linear
    heads on the other CV folds of the training styles) is in the top HARD_NEGATIVE_SHARE, 1 elsewhere."""
    labels = np.array([types.index(t) for t in data.types])
    train_rows = np.flatnonzero([not is_validation(g) for g in data.groups])
    _, trained = learned_classes(labels, train_rows, len(types))
    folds = np.array([cv_fold(data.groups[i]) for i in train_rows])
    front, back = types.index("front"), types.index("back")
    p_front = np.zeros(len(labels))
    for fold in range(CV_FOLDS):
        held = train_rows[folds == fold]
        head, _ = fit_with_mirrors(labels, embeddings, train_rows[folds != fold], trained, LINEAR)
        p_front[held] = predict_probabilities(head, embeddings[held])[:, front]
    backs = train_rows[labels[train_rows] == back]
    hardest = backs[np.argsort(-p_front[backs])[: max(1, int(round(HARD_NEGATIVE_SHARE * len(backs))))]]
    weights = np.ones(len(labels), dtype=np.float32)
    weights[hardest] = HARD_NEGATIVE_WEIGHT
    return weights


def harder_products(data: TypeExamples, rows: np.ndarray) -> tuple[list[int], list[str]]:
    """(rows, product per row): each product's own images plus every back image of its style."""
    out_rows, out_products = [], []
    for product in sorted({data.products[i] for i in rows}):
        style = next(data.groups[i] for i in rows if data.products[i] == product)
        own = [i for i in rows if data.products[i] == product]
        backs = [i for i in rows if data.groups[i] == style and data.types[i] == "back" and i not in own]
        for i in own + backs:
            out_rows.append(int(i))
            out_products.append(product)
    return out_rows, out_products


def option_row(types, data: TypeExamples, labels: np.ndarray, fitted, name: str) -> dict:
    val = fitted.val_rows
    predicted = fitted.probabilities[val].argmax(axis=1)
    learned = np.array([fitted.trained[t] for t in labels[val]])
    products = [data.products[i] for i in val]
    front = types.index("front")
    per_type_recall = {
        t: round(float((predicted[labels[val] == k] == k).mean()), 4)
        for k, t in enumerate(types)
        if (labels[val] == k).any()
    }
    return {
        "option": name,
        "head": fitted.config.describe(),
        "accuracy": round(float((predicted == labels[val]).mean()), 4),
        "accuracy_learned_types": round(float((predicted[learned] == labels[val][learned]).mean()), 4),
        "recall": per_type_recall,
        "back_called_front": back_called_front(types, labels[val], predicted),
        "front_called_back": int((predicted[labels[val] == front] == types.index("back")).sum()),
        "hero": hero_front_rate(products, labels[val], fitted.probabilities[val], front),
    }


def margin_sweep(types, data: TypeExamples, labels: np.ndarray, probabilities: np.ndarray, val: np.ndarray) -> dict:
    front, back = types.index("front"), types.index("back")
    sets = {"products": (list(val), [data.products[i] for i in val])}
    sets["products_plus_style_backs"] = harder_products(data, val)
    table = []
    for margin in MARGINS:
        row: dict = {"min_margin": margin}
        for name, (rows, products) in sets.items():
            for role in ("calibration", "test", "all"):
                keep = [k for k, i in enumerate(rows) if role == "all" or role_of(data.groups[i]) == role]
                r = [rows[k] for k in keep]
                h = hero_front_rate([products[k] for k in keep], labels[r], probabilities[r], front, (back, margin))
                row[f"{name}/{role}"] = {
                    "worst_order": h["worst_order"]["rate"],
                    "random_order": h["random_order"],
                    "n": h["products_with_front"],
                }
        table.append(row)
    return {"rival": "back", "margins": table}


def choose_margin(sweep: dict) -> float:
    """The smallest margin with the best worst-order hero rate on the calibration styles (both product sets)."""

    def score(row: dict) -> tuple[float, float]:
        return (
            row["products/calibration"]["worst_order"] + row["products_plus_style_backs/calibration"]["worst_order"],
            -row["min_margin"],
        )

    return max(sweep["margins"], key=score)["min_margin"]


def run(manifest: Path, cache_dir: Path | None) -> dict:
    types = load_catalog().get("apparel").types
    data = types_from_manifest(manifest)
    labels = np.array([types.index(t) for t in data.types])
    embeddings, valid = cached_embeddings(data.paths, cache_dir)
    require_decodable(data.paths, valid)
    rows, fitted_by_name = [], {}
    for options in OPTIONS:
        fitted = fit(types, data, embeddings, options)
        fitted_by_name[options.describe()] = fitted
        rows.append(option_row(types, data, labels, fitted, options.describe()))
    hard = fit(types, data, embeddings, TrainingOptions(), extra_weight=mined_backs(types, data, embeddings))
    name = f"hard-negative mining: top {HARD_NEGATIVE_SHARE:.0%} out-of-fold front-like backs x{HARD_NEGATIVE_WEIGHT:g}"
    rows.append(option_row(types, data, labels, hard, name))
    kept = fitted_by_name[TrainingOptions().describe()]
    sweep = margin_sweep(types, data, labels, kept.probabilities, kept.val_rows)
    return {
        "data": f"{manifest} (Magento sample data), apparel views; split by style (training.splits)",
        "training_options": rows,
        "hero_margin": {"head": TrainingOptions().describe(), "chosen": choose_margin(sweep), **sweep},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=DEFAULT_DATA / "catalog" / "manifest.csv")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args.manifest, args.cache_dir)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
