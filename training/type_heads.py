"""Per-category type heads: a softmax layer on the shared backbone embedding, one Triton model `type_<category>`.

    # apparel from the development catalog (views: main->front, back->back, alt1->detail, outfit->lifestyle, side)
    python -m training.type_heads --category apparel --manifest ../shared/data/catalog/manifest.csv
    # any category from a folder-per-type layout: DIR/<type>/*.jpg, type names from categories.toml
    python -m training.type_heads --category footwear --folders DIR

Writes build_engines/heads/type_<category>.onnx (input EMBEDDING [1280], output TYPE_PROBS [len(types)], in the
category's `types` order) and type_<category>.json (data, split, metrics). Types with fewer than MIN_EXAMPLES
training images are not learned: their logit is pinned low and the card says so. Validation is split by product
style, so colourways of one style (same pose and background) never sit on both sides.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from training.datasets import TypeExamples, types_from_folders, types_from_manifest
from training.heads import (
    LINEAR,
    MIN_EXAMPLES,
    SEED,
    HeadConfig,
    export,
    fit_with_mirrors,
    learned_classes,
    predict_probabilities,
    train,
)
from training.metrics import classification_report
from training.splits import CV_FOLDS, VALIDATION_FRACTION, cv_fold, is_validation

# Candidates the type-head command chooses from by style-grouped cross-validation on the training styles only
# (the validation styles play no part in the choice).
CANDIDATES = (
    HeadConfig(weight_decay=1e-3),
    HeadConfig(weight_decay=1e-4, epochs=800),
    HeadConfig(hidden=128, dropout=0.5, weight_decay=1e-4, epochs=300),
    HeadConfig(hidden=512, dropout=0.5, weight_decay=1e-4, epochs=300),
    HeadConfig(hidden=512, dropout=0.5, weight_decay=1e-3, epochs=300),
)


def choose_config(
    embeddings: np.ndarray,
    mirrored: np.ndarray,
    labels: np.ndarray,
    groups: list[str],
    trained: list[bool],
    candidates: tuple[HeadConfig, ...] = CANDIDATES,
) -> tuple[HeadConfig, list[dict]]:
    """Grouped k-fold CV over the training rows (a group never straddles folds): the candidate with the best mean
    held-out accuracy wins (ties: the earlier, simpler one). Returns (winner, one row per candidate)."""
    folds = np.array([cv_fold(g) for g in groups])
    learnable = np.array([trained[t] for t in labels])
    table = []
    for config in candidates:
        accuracies = []
        for fold in range(CV_FOLDS):
            fit_rows = np.flatnonzero((folds != fold) & learnable)
            held = np.flatnonzero(folds == fold)
            if not len(fit_rows) or not len(held):
                continue
            x = np.concatenate([embeddings[fit_rows], mirrored[fit_rows]])
            y = np.concatenate([labels[fit_rows], labels[fit_rows]])
            head = train(x, y, trained, config=config)
            predicted = predict_probabilities(head, embeddings[held]).argmax(axis=1)
            accuracies.append(float((predicted == labels[held]).mean()))
        score = round(float(np.mean(accuracies)), 4) if accuracies else None  # None: no fold had both sides
        table.append({"config": config.describe(), "cv_accuracy": score, **config.__dict__})
    if any(row["cv_accuracy"] is None for row in table):  # too few groups for the folds: nothing was scored
        return LINEAR, table
    best = max(range(len(candidates)), key=lambda i: (table[i]["cv_accuracy"], -i))
    return candidates[best], table


def hero_front_rate(products: list[str], truth: np.ndarray, probabilities: np.ndarray, front: int) -> dict:
    """Of validation products that have a front image, how often the page's hero (highest front probability among
    images predicted front, as the gateway orders them) is a true front."""
    hits, total = 0, 0
    for product in sorted(set(products)):
        rows = [i for i, p in enumerate(products) if p == product]
        if not any(truth[i] == front for i in rows):
            continue
        total += 1
        predicted_front = [i for i in rows if probabilities[i].argmax() == front]
        hero = max(predicted_front or rows, key=lambda i: probabilities[i, front])
        hits += int(truth[hero] == front)
    return {"products_with_front": total, "hero_is_front": hits, "rate": round(hits / total, 4) if total else None}


def run(category_name: str, data: TypeExamples, out_dir: Path, source: str) -> dict:
    """Embed, choose the head's shape by CV, train on the training styles (+ mirrors), evaluate on the held-out
    styles, export type_<category>.onnx and write type_<category>.json."""
    from training.embeddings import embed_decodable

    category = load_catalog().get(category_name)
    types = category.types
    labels = np.array([types.index(t) for t in data.types])
    validation = np.array([is_validation(g) for g in data.groups])
    train_rows, val_rows = np.flatnonzero(~validation), np.flatnonzero(validation)
    counts, trained = learned_classes(labels, train_rows, len(types))

    embeddings = embed_decodable(data.paths)
    n = len(data.paths)
    config, selection = choose_config(
        embeddings[train_rows],
        embeddings[n + train_rows],
        labels[train_rows],
        [data.groups[i] for i in train_rows],
        trained,
    )
    head, keep = fit_with_mirrors(labels, embeddings, train_rows, trained, config)
    probabilities = predict_probabilities(head, embeddings[:n])
    report = {
        **describe_training(category_name, category.head, types, source, counts, trained),
        "head": config.describe(),
        "model_selection": {
            "rule": f"{CV_FOLDS}-fold cross-validation grouped by style over the training styles only; best mean "
            "held-out accuracy (all types, unlearned ones count as errors) wins, ties to the simpler candidate",
            "candidates": selection,
        },
        "train_images": int(len(keep)),
        "validation_images": int(len(val_rows)),
        **validation_report(types, trained, labels[val_rows], probabilities[val_rows], data.products, val_rows),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    export(head, out_dir / f"{category.head}.onnx")
    (out_dir / f"{category.head}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def describe_training(
    category_name: str, model: str, types: tuple[str, ...], source: str, counts: np.ndarray, trained: list[bool]
) -> dict:
    return {
        "model": model,
        "category": category_name,
        "types": list(types),
        "data": source,
        "seed": SEED,
        "split": f"by style, {VALIDATION_FRACTION:.0%} of styles held out (sha256 of the style name)",
        "train_counts": {t: int(c) for t, c in zip(types, counts)},
        "learned_types": [t for t, ok in zip(types, trained) if ok],
        "not_learned": {
            t: f"{int(c)} training images < {MIN_EXAMPLES}" for t, c, ok in zip(types, counts, trained) if not ok
        },
    }


def validation_report(
    types: tuple[str, ...],
    trained: list[bool],
    truth: np.ndarray,
    probabilities: np.ndarray,
    products: list[str],
    val_rows: np.ndarray,
) -> dict:
    """Accuracy over every type and over the learned ones only, and the hero metric when the category has fronts."""
    predicted = probabilities.argmax(axis=1)
    learned = np.array([trained[t] for t in truth], dtype=bool)
    report = {
        "validation": classification_report(types, truth, predicted),
        "validation_learned_types_only": classification_report(types, truth[learned], predicted[learned]),
    }
    if "front" in types:
        report["hero"] = hero_front_rate([products[i] for i in val_rows], truth, probabilities, types.index("front"))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--category", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="catalog manifest.csv (apparel views)")
    source.add_argument("--folders", type=Path, help="folder-per-type layout: DIR/<type>/*.jpg")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    args = parser.parse_args(argv)
    types = load_catalog().get(args.category).types
    if args.manifest:
        data = types_from_manifest(args.manifest)
        source_note = f"{args.manifest} (Magento sample data, OSL-3.0/AFL-3.0)"
    else:
        data, source_note = types_from_folders(args.folders, types), str(args.folders)
    if not data.paths:
        print("no labelled images found", file=sys.stderr)
        return 2
    report = run(args.category, data, args.out, source_note)
    print(
        json.dumps(
            {k: report[k] for k in ("model", "train_counts", "not_learned", "validation", "hero") if k in report},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
