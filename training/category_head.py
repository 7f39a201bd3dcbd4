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
evaluation holds out whole grocery products (fine classes, salted hash as in type_heads) to measure new products;
catalog and folder images are split by the salted hash of their group (catalog style; in a folder, the first
sub-folder below the class folder, else the file name). Embeddings go through the production preprocessing (DALI
runner + backbone, with mirrored copies for training) and are cached under --cache-dir.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_INPUT, CATEGORY_HEAD_OUTPUT
from training.splits import is_validation
from training.type_heads import APPAREL_PREFIXES, IMAGE_SUFFIXES, MIN_EXAMPLES, SEED, TypeHead, metrics, train
from training.type_heads import export as export_head

DEFAULT_CACHE = Path(os.environ.get("IMGSEL_EMBEDDING_CACHE", Path(tempfile.gettempdir()) / "imgsel-embeddings"))
FLOORS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
REQUEST_SIZE = 3  # images per simulated request in the request-level evaluation


@dataclass
class Labelled:
    paths: list[Path] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # product (grocery fine class, catalog style): split unit
    validation: list[bool] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, path: Path, cls: str, group: str, validation: bool, source: str) -> None:
        self.paths.append(path)
        self.classes.append(cls)
        self.groups.append(group)
        self.validation.append(validation)
        self.sources.append(source)

    def extend(self, other: Labelled) -> None:
        for values, more in zip(self.__dict__.values(), other.__dict__.values()):
            values.extend(more)


def from_grocery(root: Path, classes: tuple[str, ...]) -> Labelled:
    """Grocery Store Dataset: train.txt (+ one iconic image per product) for training, val.txt for validation. The
    top-level class is the first folder of the path (Fruit / Vegetables / Packages), lower-cased."""
    names = {}
    data = Labelled()
    with (root / "classes.csv").open() as file:
        for row in csv.reader(file):
            if row and row[1].strip().isdigit():
                names[int(row[1])] = row[0].strip()
                iconic = Path(row[4].strip().lstrip("/"))
                data.add(root / iconic, _grocery_class(iconic.parts[1], classes), row[0].strip(), False, "grocery")
    for listing, validation in (("train.txt", False), ("val.txt", True)):
        for line in (root / listing).read_text().splitlines():
            if not line.strip():
                continue
            path, fine = (part.strip() for part in line.split(",")[:2])
            relative = Path(path)
            data.add(
                root / relative, _grocery_class(relative.parts[1], classes), names[int(fine)], validation, "grocery"
            )
    return data


def _grocery_class(folder: str, classes: tuple[str, ...]) -> str:
    cls = folder.lower()
    if cls not in classes:
        raise SystemExit(
            f"grocery top-level folder {folder!r} is not a class of [category_head] ({', '.join(classes)})"
        )
    return cls


def from_catalog(manifest: Path, classes: tuple[str, ...]) -> Labelled:
    """Catalog studio photos: apparel style prefixes -> `apparel`, every other row (bags, watches, fitness gear,
    gift card) -> `gear`; split by style."""
    for needed in ("apparel", "gear"):
        if needed not in classes:
            raise SystemExit(f"--catalog needs the class {needed!r} in [category_head] classes")
    data = Labelled()
    for row in csv.DictReader(manifest.open()):
        cls = "apparel" if row["category"] in APPAREL_PREFIXES else "gear"
        data.add(manifest.parent / row["file"], cls, row["style"], is_validation(row["style"]), "catalog")
    return data


def from_folders(root: Path, classes: tuple[str, ...]) -> Labelled:
    """DIR/<class>/... : every image below a class folder (recursively). The split group is the first sub-folder
    below the class folder (keep one product's photos in one sub-folder), else the file name."""
    data = Labelled()
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if class_dir.name not in classes:
            raise SystemExit(
                f"{class_dir}: {class_dir.name!r} is not a class of [category_head] in categories.toml "
                f"({', '.join(classes)}); add it there (with its route) first"
            )
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                relative = path.relative_to(class_dir)
                group = f"{class_dir.name}/{relative.parts[0] if len(relative.parts) > 1 else path.stem}"
                data.add(path, class_dir.name, group, is_validation(group), f"folders:{root}")
    return data


def development_data(grocery: Path | None, catalog: Path | None, classes: tuple[str, ...]) -> Labelled:
    """The development sets in one fixed order (grocery, then catalog). The backbone fine-tune and the search
    benchmark build their file lists here too, so they share the category head's embedding cache."""
    data = Labelled()
    if grocery:
        data.extend(from_grocery(grocery, classes))
    if catalog:
        data.extend(from_catalog(catalog, classes))
    return data


def cached_embeddings(paths: list[Path], cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [2n, D] (rows n.. mirrored), valid [n]) through the production path, cached by file list."""
    from build_engines.backbone import backbone_fingerprint
    from training.embeddings import embed_files

    key = hashlib.sha256(backbone_fingerprint().encode())  # a retrained backbone never reuses old embeddings
    for path in paths:
        stat = path.stat()
        key.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    cache = None if cache_dir is None else cache_dir / f"category-{key.hexdigest()[:24]}.npz"
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        return stored["embeddings"], stored["valid"]
    embeddings, valid = embed_files(paths, with_flips=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=embeddings, valid=valid)
    return embeddings, valid


def fit(
    classes: tuple[str, ...], labels: np.ndarray, embeddings: np.ndarray, rows: np.ndarray
) -> tuple[TypeHead, list]:
    """Train on `rows` (and their mirrored copies, rows + n). Returns (head, per-class training counts)."""
    n = len(embeddings) // 2
    counts = np.bincount(labels[rows], minlength=len(classes))
    trained = [bool(c >= MIN_EXAMPLES) for c in counts]
    keep = rows[np.array([trained[labels[i]] for i in rows], dtype=bool)]
    x = np.concatenate([embeddings[keep], embeddings[n + keep]])
    y = np.concatenate([labels[keep], labels[keep]])
    return train(x, y, trained), counts.tolist()


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


def evaluate(classes, routes, min_confidence, truth, probabilities, groups) -> dict:
    predicted = probabilities.argmax(axis=1)
    request_truth, request_probs = simulated_requests(groups, truth, probabilities)
    request_pred = request_probs.argmax(axis=1)
    kept = request_probs.max(axis=1) >= min_confidence
    return {
        "images": metrics(classes, truth, predicted),
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


def probabilities_of(head: TypeHead, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(x)).numpy()


def export(head: TypeHead, path: Path) -> float:
    """ONNX with a dynamic batch axis; returns the torch/onnxruntime parity error (must be < 1e-5)."""
    return export_head(head, path, CATEGORY_HEAD_INPUT, CATEGORY_HEAD_OUTPUT)


def ood_confidence(head: TypeHead, folder: Path, min_confidence: float) -> dict:
    """Images of no class (e.g. the placeholders): how many the head would still trust at the floor. Transparent
    images are flattened on white by the preprocessing runner, as in serving."""
    from training.embeddings import analyse_encoded

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [np.fromfile(path, dtype=np.uint8) for path in paths]
    analysed = analyse_encoded(files)
    probabilities = probabilities_of(head, analysed.embeddings[analysed.valid])
    confidence = probabilities.max(axis=1)
    return {
        "folder": str(folder),
        "images": int(len(paths)),
        "max_confidence": [round(float(c), 3) for c in confidence],
        "trusted_at_min_confidence": int((confidence >= min_confidence).sum()),
    }


def run(data: Labelled, out_dir: Path, sources: list[str], cache_dir: Path | None, ood: Path | None = None) -> dict:
    head_config = load_catalog().category_head
    if head_config is None:
        raise SystemExit("categories.toml has no [category_head] table")
    classes = head_config.classes
    routes = [head_config.routes[c] for c in classes]
    labels = np.array([classes.index(c) for c in data.classes])
    validation = np.array(data.validation)
    groups = np.array(data.groups)

    started = time.perf_counter()
    embeddings, valid = cached_embeddings(data.paths, cache_dir)
    embed_s = time.perf_counter() - started
    n = len(data.paths)
    if not valid.all():
        bad = [str(data.paths[i]) for i in np.flatnonzero(~valid)]
        raise SystemExit(f"undecodable training images: {bad[:5]}")

    train_rows, val_rows = np.flatnonzero(~validation), np.flatnonzero(validation)
    started = time.perf_counter()
    head, counts = fit(classes, labels, embeddings, train_rows)
    train_s = time.perf_counter() - started
    probabilities = probabilities_of(head, embeddings[:n])
    val_groups = [data.groups[i] for i in val_rows]
    report = {
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
        "train_images": int(len(train_rows)),
        "validation_images": int(len(val_rows)),
        "embedding_seconds": round(embed_s, 1),
        "training_seconds": round(train_s, 1),
        "validation": evaluate(
            classes, routes, head_config.min_confidence, labels[val_rows], probabilities[val_rows], val_groups
        ),
    }
    for source in sorted(set(data.sources)):
        rows = np.array([i for i in val_rows if data.sources[i] == source])
        if len(rows):
            report[f"validation_{source.split(':')[0]}"] = evaluate(
                classes,
                routes,
                head_config.min_confidence,
                labels[rows],
                probabilities[rows],
                [data.groups[i] for i in rows],
            )

    grocery = np.array([s == "grocery" for s in data.sources])
    if grocery.any():
        # New products: hold out whole grocery products (fine classes) from training, evaluate on their val photos.
        unseen = np.array([g and is_validation(group) for g, group in zip(grocery, groups)])
        rows = np.flatnonzero(~validation & ~unseen)
        held_out = np.flatnonzero(validation & unseen)
        if len(held_out):
            other, _ = fit(classes, labels, embeddings, rows)
            probs = probabilities_of(other, embeddings[held_out])
            report["unseen_grocery_products"] = {
                "held_out_products": sorted(set(groups[held_out].tolist())),
                **evaluate(
                    classes,
                    routes,
                    head_config.min_confidence,
                    labels[held_out],
                    probs,
                    [data.groups[i] for i in held_out],
                ),
            }
    if ood is not None:
        report["out_of_distribution"] = ood_confidence(head, ood, head_config.min_confidence)

    out_dir.mkdir(parents=True, exist_ok=True)
    report["onnx_parity_max_abs_error"] = float(f"{export(head, out_dir / f'{head_config.model}.onnx'):.2e}")
    (out_dir / f"{head_config.model}.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grocery", type=Path, help="Grocery Store Dataset root (classes.csv, train.txt, val.txt)")
    parser.add_argument("--catalog", type=Path, help="catalog manifest.csv (apparel -> apparel, the rest -> gear)")
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
    if args.folders:
        data.extend(from_folders(args.folders, classes))
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
