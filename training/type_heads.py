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
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from contract.tensors import EMBEDDING_DIM, TYPE_HEAD_INPUT, TYPE_HEAD_OUTPUT
from training.splits import CV_FOLDS, VALIDATION_FRACTION, cv_fold, is_validation

MANIFEST_VIEW_TO_TYPE = {"main": "front", "back": "back", "alt1": "detail", "outfit": "lifestyle", "side": "side"}
APPAREL_PREFIXES = {"mh", "mj", "mp", "ms", "msh", "mt", "wb", "wh", "wj", "wp", "ws", "wsh", "wt"}
MIN_EXAMPLES = 8
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})  # training folders
SEED = 0
UNTRAINED_LOGIT = -30.0  # softmax gives such a type ~1e-13: never predicted


@dataclass
class Labelled:
    paths: list[Path]
    types: list[str]
    groups: list[str]  # product style: the unit of the train/validation split
    products: list[str]  # one product page (style + colour): the unit of the hero metric


def from_manifest(manifest: Path) -> Labelled:
    rows = list(csv.DictReader(manifest.open()))
    data = Labelled([], [], [], [])
    for row in rows:
        view = row["view"].split("_")[0]
        if row["category"] not in APPAREL_PREFIXES or view not in MANIFEST_VIEW_TO_TYPE:
            continue
        data.paths.append(manifest.parent / row["file"])
        data.types.append(MANIFEST_VIEW_TO_TYPE[view])
        data.groups.append(row["style"])
        data.products.append(f"{row['style']}-{row['color']}")
    return data


def from_folders(root: Path, types: tuple[str, ...]) -> Labelled:
    data = Labelled([], [], [], [])
    for type_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if type_dir.name not in types:
            raise SystemExit(f"{type_dir}: '{type_dir.name}' is not a type of this category ({', '.join(types)})")
        for path in sorted(type_dir.glob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                data.paths.append(path)
                data.types.append(type_dir.name)
                data.groups.append(path.stem)
                data.products.append(path.stem)
    return data


@dataclass(frozen=True)
class HeadConfig:
    """Shape and training of a head: `hidden` 0 is a softmax layer on the embedding, else one hidden ReLU layer with
    dropout on its input and on the embedding."""

    hidden: int = 0
    dropout: float = 0.0
    weight_decay: float = 1e-3
    epochs: int = 400

    @property
    def lr(self) -> float:
        return 0.01 if self.hidden == 0 else 3e-3

    def describe(self) -> str:
        shape = "linear" if self.hidden == 0 else f"MLP {self.hidden}, dropout {self.dropout:g}"
        return f"{shape}, weight decay {self.weight_decay:g}, {self.epochs} steps"


LINEAR = HeadConfig()
# Candidates the type-head command chooses from by style-grouped cross-validation on the training styles only
# (the validation styles play no part in the choice).
CANDIDATES = (
    HeadConfig(weight_decay=1e-3),
    HeadConfig(weight_decay=1e-4, epochs=800),
    HeadConfig(hidden=128, dropout=0.5, weight_decay=1e-4, epochs=300),
    HeadConfig(hidden=512, dropout=0.5, weight_decay=1e-4, epochs=300),
    HeadConfig(hidden=512, dropout=0.5, weight_decay=1e-3, epochs=300),
)


class TypeHead(nn.Module):
    def __init__(self, n_types: int, trained: list[bool], config: HeadConfig = LINEAR):
        super().__init__()
        if config.hidden == 0:
            self.body = nn.Linear(EMBEDDING_DIM, n_types)
        else:
            self.body = nn.Sequential(
                nn.Dropout(config.dropout),
                nn.Linear(EMBEDDING_DIM, config.hidden),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, n_types),
            )
        self.register_buffer("untrained_bias", torch.tensor([0.0 if t else UNTRAINED_LOGIT for t in trained]))
        self.register_buffer("trained_mask", torch.tensor([1.0 if t else 0.0 for t in trained]))

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.body(embedding) * self.trained_mask + self.untrained_bias

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(embedding), dim=1)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Cross-entropy weights that give every present class the same total weight (absent classes 0)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float32)
    return torch.tensor(
        np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0), dtype=torch.float32
    )


def train(
    x: np.ndarray,
    y: np.ndarray,
    trained: list[bool],
    epochs: int | None = None,
    weight_decay: float | None = None,
    config: HeadConfig = LINEAR,
) -> TypeHead:
    """Full-batch Adam on class-balanced cross-entropy (the view classes are very unequal). `epochs` and
    `weight_decay` override the config's."""
    overrides = {k: v for k, v in (("epochs", epochs), ("weight_decay", weight_decay)) if v is not None}
    config = HeadConfig(**{**config.__dict__, **overrides})
    torch.manual_seed(SEED)
    head = TypeHead(len(trained), trained, config)
    loss_fn = nn.CrossEntropyLoss(weight=balanced_class_weights(y, len(trained)))
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    features, targets = torch.from_numpy(x), torch.from_numpy(y)
    head.train()
    for _ in range(config.epochs):
        optimiser.zero_grad()
        loss = loss_fn(head.logits(features), targets)
        loss.backward()
        optimiser.step()
    return head.eval()


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
            with torch.no_grad():
                predicted = head(torch.from_numpy(embeddings[held])).numpy().argmax(axis=1)
            accuracies.append(float((predicted == labels[held]).mean()))
        score = round(float(np.mean(accuracies)), 4) if accuracies else None  # None: no fold had both sides
        table.append({"config": config.describe(), "cv_accuracy": score, **config.__dict__})
    if any(row["cv_accuracy"] is None for row in table):  # too few groups for the folds: nothing was scored
        return LINEAR, table
    best = max(range(len(candidates)), key=lambda i: (table[i]["cv_accuracy"], -i))
    return candidates[best], table


def metrics(types: tuple[str, ...], truth: np.ndarray, predicted: np.ndarray) -> dict:
    confusion = np.zeros((len(types), len(types)), dtype=int)
    for t, p in zip(truth, predicted):
        confusion[t, p] += 1
    per_type = {}
    for i, name in enumerate(types):
        support = int(confusion[i].sum())
        if support == 0 and confusion[:, i].sum() == 0:
            continue
        precision = confusion[i, i] / confusion[:, i].sum() if confusion[:, i].sum() else None
        recall = confusion[i, i] / support if support else None
        per_type[name] = {
            "precision": None if precision is None else round(float(precision), 3),
            "recall": None if recall is None else round(float(recall), 3),
            "support": support,
        }
    return {
        "accuracy": round(float((truth == predicted).mean()), 4),
        "n": int(len(truth)),
        "per_type": per_type,
        "confusion": {"rows_truth_cols_predicted": list(types), "matrix": confusion.tolist()},
    }


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


def export(head: TypeHead, path: Path, input_name: str = TYPE_HEAD_INPUT, output_name: str = TYPE_HEAD_OUTPUT) -> float:
    """ONNX of a head on the embedding, dynamic batch axis; returns the torch/onnxruntime parity error on fresh
    random unit embeddings (must be < 1e-5)."""
    from build_engines.export import export_onnx, max_parity_error

    example = torch.nn.functional.normalize(torch.randn(4, EMBEDDING_DIM, generator=torch.Generator().manual_seed(1)))
    export_onnx(head, example, path, input_name, output_name)
    error = max_parity_error(head, path, example)
    if error > 1e-5:
        raise RuntimeError(f"{path.name}: ONNX parity error {error:.2e}")
    return error


def run(category_name: str, data: Labelled, out_dir: Path, source: str) -> dict:
    from training.embeddings import embed_files

    category = load_catalog().get(category_name)
    types = category.types
    labels = np.array([types.index(t) for t in data.types])
    validation = np.array([is_validation(g) for g in data.groups])
    train_rows = np.flatnonzero(~validation)
    counts = np.bincount(labels[train_rows], minlength=len(types))
    trained = [bool(c >= MIN_EXAMPLES) for c in counts]
    keep = train_rows[np.array([trained[labels[i]] for i in train_rows], dtype=bool)]

    embeddings, valid = embed_files(data.paths, with_flips=True)
    n = len(data.paths)
    if not valid.all():
        bad = [str(data.paths[i]) for i in np.flatnonzero(~valid)]
        raise SystemExit(f"undecodable training images: {bad[:5]}")
    config, selection = choose_config(
        embeddings[train_rows],
        embeddings[n + train_rows],
        labels[train_rows],
        [data.groups[i] for i in train_rows],
        trained,
    )
    x_train = np.concatenate([embeddings[keep], embeddings[n + keep]])  # originals + mirrored copies
    y_train = np.concatenate([labels[keep], labels[keep]])
    head = train(x_train, y_train, trained, config=config)

    val_rows = np.flatnonzero(validation)
    with torch.no_grad():
        probabilities = head(torch.from_numpy(embeddings[:n])).numpy()
    predicted = probabilities.argmax(axis=1)
    report = {
        "model": category.head,
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
        "head": config.describe(),
        "model_selection": {
            "rule": f"{CV_FOLDS}-fold cross-validation grouped by style over the training styles only; best mean "
            "held-out accuracy (all types, unlearned ones count as errors) wins, ties to the simpler candidate",
            "candidates": selection,
        },
        "train_images": int(len(keep)),
        "validation_images": int(len(val_rows)),
        "validation": metrics(types, labels[val_rows], predicted[val_rows]),
        "validation_learned_types_only": metrics(
            types, *(a[[trained[labels[i]] for i in val_rows]] for a in (labels[val_rows], predicted[val_rows]))
        ),
    }
    if "front" in types:
        report["hero"] = hero_front_rate(
            [data.products[i] for i in val_rows], labels[val_rows], probabilities[val_rows], types.index("front")
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    export(head, out_dir / f"{category.head}.onnx")
    (out_dir / f"{category.head}.json").write_text(json.dumps(report, indent=2) + "\n")
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
        data, source_note = from_manifest(args.manifest), f"{args.manifest} (Magento sample data, OSL-3.0/AFL-3.0)"
    else:
        data, source_note = from_folders(args.folders, types), str(args.folders)
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
