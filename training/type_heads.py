"""Per-category type heads: a softmax layer on the shared backbone embedding, one Triton model `type_<category>`.

    # apparel from the development catalog (views: main->front, back->back, alt1->detail, outfit->lifestyle, side)
    python -m training.type_heads --category apparel --manifest ../shared/data/catalog/manifest.csv
    # any category from a folder-per-type layout: DIR/<type>/*.jpg, type names from categories.toml
    python -m training.type_heads --category footwear --folders DIR

Writes build_engines/heads/type_<category>.onnx (input EMBEDDING [1280], output TYPE_PROBS [len(types)], in the
category's `types` order) and type_<category>.json (data, split, metrics). Types with fewer than MIN_EXAMPLES
training images are not learned: their logit is pinned low and the card says so. Validation is split by product
style, so colourways of one style (same pose and background) never sit on both sides.

The report counts the error that costs a page its hero (issue #15): backs called front, and how often the page's
hero is a true front, also in the worst input order (every image predicted front may lead, as the gateway orders
by resolution and input order) with and without the category's hero margin (categories.toml [<cat>.hero]).
Training options measured by `python -m evaluation.type_hero`: `--no-mirrors` (train without the mirrored copies)
and `--back-weight W` (a back's loss weighs W times its class-balanced weight).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.categories import HeroMargin
from contract.categories_file import load_catalog
from training.datasets import TypeExamples, types_from_folders, types_from_manifest
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings
from training.embeddings import require_decodable
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


@dataclass(frozen=True)
class TrainingOptions:
    """`mirrors`: train on mirrored copies too; `back_weight`: a `back` image's loss weighs this many times its
    class-balanced weight (1: plain class balance), the cost-sensitive answer to backs called front."""

    mirrors: bool = True
    back_weight: float = 1.0

    def sample_weight(self, labels: np.ndarray, back: int | None) -> np.ndarray:
        """One loss weight per row of `labels`; `back` is the back type's index (None: the category has none)."""
        weights = np.ones(len(labels), dtype=np.float32)
        if back is not None:
            weights[labels == back] = self.back_weight
        return weights

    def describe(self) -> str:
        return f"{'with' if self.mirrors else 'without'} mirrored copies, back weight {self.back_weight:g}"


def choose_config(
    embeddings: np.ndarray,
    mirrored: np.ndarray,
    labels: np.ndarray,
    groups: list[str],
    trained: list[bool],
    candidates: tuple[HeadConfig, ...] = CANDIDATES,
    options: TrainingOptions | None = None,
    back: int | None = None,
) -> tuple[HeadConfig, list[dict]]:
    """Grouped k-fold CV over the training rows (a group never straddles folds): the candidate with the best mean
    held-out accuracy wins (ties: the earlier, simpler one). Returns (winner, one row per candidate)."""
    options = options or TrainingOptions()
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
            copies = [embeddings[fit_rows], mirrored[fit_rows]] if options.mirrors else [embeddings[fit_rows]]
            x = np.concatenate(copies)
            y = np.concatenate([labels[fit_rows]] * len(copies))
            w = np.concatenate([options.sample_weight(labels[fit_rows], back)] * len(copies))
            head = train(x, y, trained, config=config, sample_weight=w)
            predicted = predict_probabilities(head, embeddings[held]).argmax(axis=1)
            accuracies.append(float((predicted == labels[held]).mean()))
        score = round(float(np.mean(accuracies)), 4) if accuracies else None  # None: no fold had both sides
        table.append({"config": config.describe(), "cv_accuracy": score, **config.__dict__})
    if any(row["cv_accuracy"] is None for row in table):  # too few groups for the folds: nothing was scored
        return LINEAR, table
    best = max(range(len(candidates)), key=lambda i: (table[i]["cv_accuracy"], -i))
    return candidates[best], table


def may_lead(rows: list[int], probabilities: np.ndarray, front: int, hero: tuple[int, float] | None) -> list[int]:
    """The rows of one product that the gateway may put first (gateway.decisions.selection): the images predicted
    front (the gateway picks among them by resolution, sharpness, supplier and input order, not by probability);
    with a hero margin `hero` = (rival index, min_margin), only those whose P(front) - P(rival) clears it, or, when
    none does, the one with the largest margin. Empty when no image is predicted front."""
    predicted_front = [i for i in rows if probabilities[i].argmax() == front]
    if hero is None or not predicted_front:
        return predicted_front
    rival, min_margin = hero
    margin = {i: float(probabilities[i, front] - probabilities[i, rival]) for i in predicted_front}
    cleared = [i for i in predicted_front if margin[i] >= min_margin]
    return cleared or [max(predicted_front, key=lambda i: margin[i])]


def hero_front_rate(
    products: list[str],
    truth: np.ndarray,
    probabilities: np.ndarray,
    front: int,
    hero: tuple[int, float] | None = None,
) -> dict:
    """Of validation products that have a front image, how often the page's hero is a true front:
    - `rate`: the hero is the highest front probability among images predicted front;
    - `worst_order`: the gateway's order (any image that may lead, `may_lead`, can come first: a back called front
      with the larger resolution or the first place in the request leads), a product counts only when every image
      that may lead is a true front; `random_order`: the expected rate when each of them is equally likely to lead.
    `hero`: (rival index, min_margin) of the category's hero margin, None for none."""
    hits, worst, expected, total = 0, 0, 0.0, 0
    for product in sorted(set(products)):
        rows = [i for i, p in enumerate(products) if p == product]
        if not any(truth[i] == front for i in rows):
            continue
        total += 1
        predicted_front = [i for i in rows if probabilities[i].argmax() == front]
        best = max(predicted_front or rows, key=lambda i: probabilities[i, front])
        hits += int(truth[best] == front)
        leaders = may_lead(rows, probabilities, front, hero)
        worst += int(bool(leaders) and all(truth[i] == front for i in leaders))
        expected += float(np.mean([truth[i] == front for i in leaders])) if leaders else 0.0
    return {
        "products_with_front": total,
        "hero_is_front": hits,
        "rate": round(hits / total, 4) if total else None,
        "worst_order": {"hero_is_front": worst, "rate": round(worst / total, 4) if total else None},
        "random_order": round(expected / total, 4) if total else None,
    }


def back_called_front(types: tuple[str, ...], truth: np.ndarray, predicted: np.ndarray) -> dict | None:
    """How many `back` images the head calls `front` (the error that puts a back on the hero slot)."""
    if "back" not in types or "front" not in types:
        return None
    backs = truth == types.index("back")
    called = int((predicted[backs] == types.index("front")).sum())
    n = int(backs.sum())
    return {"backs": n, "called_front": called, "rate": round(called / n, 4) if n else None}


def hero_rule(types: tuple[str, ...], margin: HeroMargin | None) -> tuple[int, float] | None:
    """(rival index, min_margin) of a category's hero margin (categories.toml), None when it has none."""
    return None if margin is None else (types.index(margin.rival), margin.min_margin)


@dataclass
class Fitted:
    config: HeadConfig
    selection: list[dict]
    head: object  # training.heads.SoftmaxHead
    train_rows: np.ndarray  # the rows the head was fitted on (learned types of the training styles)
    val_rows: np.ndarray
    probabilities: np.ndarray  # [n, len(types)] for every image
    counts: np.ndarray
    trained: list[bool]


def fit(
    types: tuple[str, ...],
    data: TypeExamples,
    embeddings: np.ndarray,
    options: TrainingOptions,
    extra_weight: np.ndarray | None = None,
) -> Fitted:
    """Choose the head's shape by CV over the training styles, train on them (+ mirrors), predict every image.
    `extra_weight` (one per image) multiplies the options' loss weights in the final fit (hard-negative mining)."""
    labels = np.array([types.index(t) for t in data.types])
    validation = np.array([is_validation(g) for g in data.groups])
    train_rows, val_rows = np.flatnonzero(~validation), np.flatnonzero(validation)
    counts, trained = learned_classes(labels, train_rows, len(types))
    back = types.index("back") if "back" in types else None
    n = len(data.paths)
    config, selection = choose_config(
        embeddings[train_rows],
        embeddings[n + train_rows],
        labels[train_rows],
        [data.groups[i] for i in train_rows],
        trained,
        options=options,
        back=back,
    )
    weights = options.sample_weight(labels, back) * (1.0 if extra_weight is None else extra_weight)
    head, keep = fit_with_mirrors(labels, embeddings, train_rows, trained, config, options.mirrors, weights)
    probabilities = predict_probabilities(head, embeddings[:n])
    return Fitted(config, selection, head, keep, val_rows, probabilities, counts, trained)


def run(
    category_name: str,
    data: TypeExamples,
    out_dir: Path,
    source: str,
    cache_dir: Path | None = DEFAULT_CACHE,
    options: TrainingOptions | None = None,
) -> dict:
    """Embed (cached), choose the head's shape by CV, train on the training styles (+ mirrors), evaluate on the
    held-out styles, export type_<category>.onnx and write type_<category>.json."""
    options = options or TrainingOptions()
    category = load_catalog().get(category_name)
    types = category.types
    labels = np.array([types.index(t) for t in data.types])
    embeddings, valid = cached_embeddings(data.paths, cache_dir)
    require_decodable(data.paths, valid)
    fitted = fit(types, data, embeddings, options)
    val_rows = fitted.val_rows
    report = {
        **describe_training(category_name, category.head, types, source, fitted.counts, fitted.trained),
        "head": fitted.config.describe(),
        "training_options": {"mirrors": options.mirrors, "back_weight": options.back_weight},
        "model_selection": {
            "rule": f"{CV_FOLDS}-fold cross-validation grouped by style over the training styles only; best mean "
            "held-out accuracy (all types, unlearned ones count as errors) wins, ties to the simpler candidate",
            "candidates": fitted.selection,
        },
        "train_images": int(len(fitted.train_rows)),
        "validation_images": int(len(val_rows)),
        **validation_report(
            types,
            fitted.trained,
            labels[val_rows],
            fitted.probabilities[val_rows],
            [data.products[i] for i in val_rows],
            category.hero,
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    export(fitted.head, out_dir / f"{category.head}.onnx")
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
    hero: HeroMargin | None = None,
) -> dict:
    """Accuracy over every type and over the learned ones only, backs called front, and the hero metric (without and
    with the category's hero margin) when the category has fronts. `products`: one per row of `truth`."""
    predicted = probabilities.argmax(axis=1)
    learned = np.array([trained[t] for t in truth], dtype=bool)
    report = {
        "validation": classification_report(types, truth, predicted),
        "validation_learned_types_only": classification_report(types, truth[learned], predicted[learned]),
    }
    if (errors := back_called_front(types, truth, predicted)) is not None:
        report["back_called_front"] = errors
    if "front" in types:
        front = types.index("front")
        report["hero"] = hero_front_rate(products, truth, probabilities, front)
        if hero is not None:
            report["hero_with_margin"] = {
                "rival": hero.rival,
                "min_margin": hero.min_margin,
                **hero_front_rate(products, truth, probabilities, front, hero_rule(types, hero)),
            }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--category", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="catalog manifest.csv (apparel views)")
    source.add_argument("--folders", type=Path, help="folder-per-type layout: DIR/<type>/*.jpg")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--no-mirrors", action="store_true", help="train without the mirrored copies")
    parser.add_argument("--back-weight", type=float, default=1.0, help="loss weight of a back image (x class balance)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="embedding cache (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true")
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
    options = TrainingOptions(mirrors=not args.no_mirrors, back_weight=args.back_weight)
    report = run(args.category, data, args.out, source_note, None if args.no_cache else args.cache_dir, options)
    keys = ("model", "train_counts", "not_learned", "validation", "back_called_front", "hero", "hero_with_margin")
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
