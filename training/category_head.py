"""Top-level category head: a softmax layer on the shared backbone embedding, Triton model `category`, served as a
step of the `analyze` ensemble (output CATEGORY_PROBS), used when a request has no (known) category and by the
visual-search cascade.

    # the development data: grocery in-store photos + iconic images (fruit / vegetables / packages) and the
    # catalog's studio photos (apparel styles -> apparel, bags/watches/fitness gear -> gear)
    python -m training.category_head --grocery ../shared/data/grocery --catalog ../shared/data/catalog/manifest.csv
    # any class from a folder-per-class layout, alone or added to the above: DIR/<class>/**/*.jpg
    python -m training.category_head --folders DIR [--grocery ... --catalog ...]

Classes and their order come from contract/categories.toml `[category_head] classes` (the single source of truth; the
gateway maps a predicted class to a category with `routes`). A class with fewer than MIN_EXAMPLES training images is
not learned (its logit is pinned low). Writes build_engines/heads/category.onnx (input EMBEDDING [1280], output
CATEGORY_PROBS [len(classes)], dynamic batch) and category.json (data, split, metrics, confidence-floor curve).

Splits: grocery keeps its own train / val lists (val photos are new photos of the same 81 products), so a second
evaluation holds out whole grocery products (fine classes, training.splits.is_validation) to measure new products;
catalog and folder images are split by the salted hash of their group (catalog style; in a folder, the first
sub-folder below the class folder, else the file name). Embeddings go through the production preprocessing (DALI
runner + backbone, with mirrored copies for training) and are cached under --cache-dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.categories import CategoryHead
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_INPUT, CATEGORY_HEAD_OUTPUT
from training.datasets import (
    IMAGE_SUFFIXES,
    CategoryExamples,
    categories_from_folders,
    categories_from_products,
    development_data,
)
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings
from training.embeddings import require_decodable
from training.heads import MIN_EXAMPLES, SEED, SoftmaxHead, fit_with_mirrors, learned_classes, predict_probabilities
from training.heads import export as export_head
from training.metrics import classification_report
from training.splits import is_validation

FLOORS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
REQUEST_SIZE = 3  # images per simulated request in the request-level evaluation


def fit(
    classes: tuple[str, ...], labels: np.ndarray, embeddings: np.ndarray, rows: np.ndarray
) -> tuple[SoftmaxHead, list]:
    """Train on `rows` (and their mirrored copies, rows + n). Returns (head, per-class training counts)."""
    counts, trained = learned_classes(labels, rows, len(classes))
    return fit_with_mirrors(labels, embeddings, rows, trained)[0], counts.tolist()


def routing_accuracy(routes: list[str], truth: np.ndarray, predicted: np.ndarray) -> float:
    """Share of images whose predicted class routes to the same category as their true class (confusing fruit with
    vegetables still routes a grocery product to `grocery`)."""
    return round(float(np.mean([routes[t] == routes[p] for t, p in zip(truth, predicted)])), 4) if len(truth) else 0.0


def floor_curve(routes: list[str], truth: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    """Per confidence floor: share of predictions kept (the rest fall back to `default`), and accuracy / routing
    accuracy among the kept ones."""
    out = []
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    for floor in FLOORS:
        kept = confidence >= floor
        out.append(
            {
                "min_confidence": floor,
                "kept": round(float(kept.mean()), 4),
                "accuracy_kept": round(float((predicted[kept] == truth[kept]).mean()), 4) if kept.any() else None,
                "routing_accuracy_kept": routing_accuracy(routes, truth[kept], predicted[kept]) if kept.any() else None,
            }
        )
    return out


def simulated_requests(
    groups: list[str], truth: np.ndarray, probabilities: np.ndarray, size: int = REQUEST_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Requests of `size` images of one product (consecutive images of a group): (true class, mean probabilities),
    the gateway's aggregation."""
    labels, means = [], []
    for group in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            labels.append(truth[chunk[0]])
            means.append(probabilities[chunk].mean(axis=0))
    return np.array(labels, dtype=np.int64), np.array(means)


def evaluate(head_config: CategoryHead, truth: np.ndarray, probabilities: np.ndarray, groups: list[str]) -> dict:
    """Image-level metrics, routing accuracy, the confidence-floor curve, and simulated requests (the gateway's mean
    rule at `min_confidence`)."""
    classes, min_confidence = head_config.classes, head_config.min_confidence
    routes = [head_config.routes[c] for c in classes]
    predicted = probabilities.argmax(axis=1)
    request_truth, request_probs = simulated_requests(groups, truth, probabilities)
    request_pred = request_probs.argmax(axis=1)
    kept = request_probs.max(axis=1) >= min_confidence
    return {
        "images": classification_report(classes, truth, predicted),
        "routing_accuracy": routing_accuracy(routes, truth, predicted),
        "confidence_floor": floor_curve(routes, truth, probabilities),
        "requests": {
            "images_per_request": REQUEST_SIZE,
            "n": int(len(request_truth)),
            "accuracy": round(float((request_pred == request_truth).mean()), 4),
            "routing_accuracy": routing_accuracy(routes, request_truth, request_pred),
            f"predicted_at_min_confidence_{min_confidence:g}": round(float(kept.mean()), 4),
            "routing_accuracy_of_predicted": routing_accuracy(routes, request_truth[kept], request_pred[kept]),
        },
    }


def export(head: SoftmaxHead, path: Path) -> float:
    """ONNX with a dynamic batch axis; returns the torch/onnxruntime parity error (must be < 1e-5)."""
    return export_head(head, path, CATEGORY_HEAD_INPUT, CATEGORY_HEAD_OUTPUT)


def ood_confidence(head: SoftmaxHead, folder: Path, min_confidence: float) -> dict:
    """Images of no class (e.g. the placeholders): how many the head would still trust at the floor. Transparent
    images are flattened on white by the preprocessing runner, as in serving."""
    from training.embeddings import analyse_encoded

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [np.fromfile(path, dtype=np.uint8) for path in paths]
    analysed = analyse_encoded(files)
    probabilities = predict_probabilities(head, analysed.embeddings[analysed.valid])
    confidence = probabilities.max(axis=1)
    return {
        "folder": str(folder),
        "images": int(len(paths)),
        "max_confidence": [round(float(c), 3) for c in confidence],
        "trusted_at_min_confidence": int((confidence >= min_confidence).sum()),
    }


def run(
    data: CategoryExamples, out_dir: Path, sources: list[str], cache_dir: Path | None, ood: Path | None = None
) -> dict:
    """Embed (cached), train on the training rows (+ mirrors), evaluate on validation (all, per source, unseen grocery
    products, out-of-distribution images), export category.onnx and write category.json."""
    head_config = required_head_config()
    classes = head_config.classes
    labels = np.array([classes.index(c) for c in data.classes])
    validation = np.array(data.validation)

    started = time.perf_counter()
    embeddings, valid = cached_embeddings(data.paths, cache_dir)
    embed_s = time.perf_counter() - started
    require_decodable(data.paths, valid)

    train_rows, val_rows = np.flatnonzero(~validation), np.flatnonzero(validation)
    started = time.perf_counter()
    head, counts = fit(classes, labels, embeddings, train_rows)
    train_s = time.perf_counter() - started
    probabilities = predict_probabilities(head, embeddings[: len(data.paths)])
    report = {
        **describe_training(head_config, sources, counts),
        "train_images": int(len(train_rows)),
        "validation_images": int(len(val_rows)),
        "embedding_seconds": round(embed_s, 1),
        "training_seconds": round(train_s, 1),
        **validation_by_source(head_config, data, labels, probabilities, val_rows),
    }
    unseen = unseen_products(head_config, data, labels, embeddings)
    if unseen is not None:
        report["unseen_grocery_products"] = unseen
    if ood is not None:
        report["out_of_distribution"] = ood_confidence(head, ood, head_config.min_confidence)

    out_dir.mkdir(parents=True, exist_ok=True)
    report["onnx_parity_max_abs_error"] = float(f"{export(head, out_dir / f'{head_config.model}.onnx'):.2e}")
    (out_dir / f"{head_config.model}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def required_head_config() -> CategoryHead:
    head_config = load_catalog().category_head
    if head_config is None:
        raise SystemExit("categories.toml has no [category_head] table")
    return head_config


def describe_training(head_config: CategoryHead, sources: list[str], counts: list) -> dict:
    classes = head_config.classes
    return {
        "model": head_config.model,
        "classes": list(classes),
        "routes": dict(head_config.routes),
        "min_confidence": head_config.min_confidence,
        "data": sources,
        "seed": SEED,
        "split": (
            "grocery: its own train.txt (+ iconic images) / val.txt; catalog and folders: "
            "salted sha256 of the group (style / sub-folder) holds out ~25% of groups"
        ),
        "train_counts": dict(zip(classes, counts)),
        "not_learned": [c for c, k in zip(classes, counts) if k < MIN_EXAMPLES],
    }


def validation_by_source(
    head_config: CategoryHead,
    data: CategoryExamples,
    labels: np.ndarray,
    probabilities: np.ndarray,
    val_rows: np.ndarray,
) -> dict:
    """`validation` over every validation image, then `validation_<source>` per source (grocery, catalog, folders)."""
    report = {
        "validation": evaluate(
            head_config, labels[val_rows], probabilities[val_rows], [data.groups[i] for i in val_rows]
        )
    }
    for source in sorted(set(data.sources)):
        rows = np.array([i for i in val_rows if data.sources[i] == source])
        if len(rows):
            report[f"validation_{source.split(':')[0]}"] = evaluate(
                head_config, labels[rows], probabilities[rows], [data.groups[i] for i in rows]
            )
    return report


def unseen_products(
    head_config: CategoryHead, data: CategoryExamples, labels: np.ndarray, embeddings: np.ndarray
) -> dict | None:
    """New products: a second head trained without whole grocery products (fine classes, by the validation split of
    their name), evaluated on their validation photos. None without grocery data."""
    grocery = np.array([s == "grocery" for s in data.sources])
    if not grocery.any():
        return None
    validation, groups = np.array(data.validation), np.array(data.groups)
    unseen = np.array([g and is_validation(group) for g, group in zip(grocery, groups)])
    rows = np.flatnonzero(~validation & ~unseen)
    held_out = np.flatnonzero(validation & unseen)
    if not len(held_out):
        return None
    other, _ = fit(head_config.classes, labels, embeddings, rows)
    probabilities = predict_probabilities(other, embeddings[held_out])
    return {
        "held_out_products": sorted(set(groups[held_out].tolist())),
        **evaluate(head_config, labels[held_out], probabilities, [data.groups[i] for i in held_out]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grocery", type=Path, help="Grocery Store Dataset root (classes.csv, train.txt, val.txt)")
    parser.add_argument("--catalog", type=Path, help="catalog manifest.csv (apparel -> apparel, the rest -> gear)")
    parser.add_argument(
        "--products",
        type=Path,
        help="data root holding products/manifest.csv: its trainable shops' photos by "
        "training.datasets.SHOP_CATEGORY_CLASSES (opt-in: add those classes and routes to categories.toml first)",
    )
    parser.add_argument("--folders", type=Path, help="folder-per-class layout: DIR/<class>/**/*.jpg")
    parser.add_argument("--ood", type=Path, help="folder of images of no class (confidence check, e.g. placeholders)")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="embedding cache (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    head_config = load_catalog().category_head
    if head_config is None:
        print("categories.toml has no [category_head] table", file=sys.stderr)
        return 2
    classes = head_config.classes
    data = development_data(args.grocery, args.catalog, classes)
    sources = [f"{args.grocery} (Grocery Store Dataset, Klasson et al., MIT)"] if args.grocery else []
    sources += [f"{args.catalog} (Magento 2 sample data, OSL-3.0/AFL-3.0)"] if args.catalog else []
    if args.products:
        data.extend(categories_from_products(args.products, classes))
        sources.append(str(args.products / "products"))
    if args.folders:
        data.extend(categories_from_folders(args.folders, classes))
        sources.append(str(args.folders))
    if not data.paths:
        print("no labelled images: give --grocery, --catalog and/or --folders", file=sys.stderr)
        return 2
    report = run(data, args.out, sources, None if args.no_cache else args.cache_dir, args.ood)
    summary = {
        k: v for k, v in report.items() if k in ("train_counts", "not_learned", "train_images", "validation_images")
    }
    summary["validation"] = {k: report["validation"][k] for k in ("images", "routing_accuracy", "requests")}
    if "unseen_grocery_products" in report:
        summary["unseen_grocery_products_accuracy"] = report["unseen_grocery_products"]["images"]["accuracy"]
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
