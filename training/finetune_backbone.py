"""Fine-tune the backbone's last layers on the development data (../shared/data).

    python -m training.finetune_backbone --grocery ../shared/data/grocery \
        --catalog ../shared/data/catalog/manifest.csv

EfficientNet-Lite0 keeps its ImageNet weights up to its last MBConv block; the final 1x1 convolution (320 -> 1280) and
its batch norm (`_conv_head`, `_bn1`: 0.4 M of 4.7 M parameters) are trained with two auxiliary softmax tasks on the
pooled, L2-normalised embedding: the top-level category (the category head's classes: grocery Fruit / Vegetables /
Packages, catalog apparel / gear) and the apparel image type (catalog views). An L2-SP penalty (`--l2sp`) pulls the
weights towards ImageNet's so the embedding stays general (blur, placeholders, search use it too). Only training
rows are used: grocery `train.txt` + iconic images, catalog styles outside the salted validation split (the same
splits as the heads), so every head's validation stays unseen. Batch-norm statistics stay ImageNet's (eval mode).

Block outputs (the input of `_conv_head`, 320x7x7 per image and its mirror) go through the production preprocessing
once and are cached (`--cache`); training then takes about a minute on 2 cores. Writes
build_engines/heads/backbone_head.pt (the two layers' tensors, loaded over the ImageNet weights by
build_engines.backbone.load_backbone) and backbone_head.json (data, settings, losses). Retrain every head afterwards
(`make models` does both, in order).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from build_engines.backbone import FINETUNED_HEAD, load_backbone
from contract.categories_file import load_catalog
from contract.tensors import PIXELS
from training.datasets import CategoryExamples, development_data, types_from_manifest
from training.embedding_cache import file_list_digest
from training.heads import SEED, balanced_class_weights
from training.splits import is_validation

DEFAULT_CACHE = Path("/tmp/imgsel-backbone-blocks")
EPOCHS = 8
LR = 3e-4
L2SP = 1e-2
BATCH = 128
TYPE_BATCH = 32  # apparel type rows mixed into every batch (the type task has ~250 training images)
LOGIT_SCALE = 10.0  # cosine-softmax temperature on the unit-norm embedding


def block_outputs(paths: list[Path], cache: Path) -> np.ndarray:
    """[2n, 320, 7, 7] float16: the last MBConv block's output for every image, then for its mirror. Cached by file
    list (path and size; the ImageNet trunk computes them, so no backbone fingerprint)."""
    from preprocessing.runner import PreprocessRunner

    path = cache / f"blocks-{file_list_digest(paths, with_mtime=False)[:16]}.npy"
    if path.is_file():
        return np.load(path)
    trunk = load_backbone(finetuned=False).trunk
    runner = PreprocessRunner(max_batch=64)
    plain, mirrored = [], []
    for start in range(0, len(paths), 64):
        pixels = torch.from_numpy(
            runner.run([np.fromfile(p, np.uint8) for p in paths[start : start + 64]])[PIXELS.name]
        )
        with torch.no_grad():
            for out, x in ((plain, pixels), (mirrored, torch.flip(pixels, dims=[3]))):
                y = trunk._swish(trunk._bn0(trunk._conv_stem(x)))
                for block in trunk._blocks:
                    y = block(y, drop_connect_rate=None)
                out.append(y.numpy().astype(np.float16))
    blocks = np.concatenate(plain + mirrored)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, blocks)
    return blocks


@dataclass
class Tasks:
    """Training rows of the two auxiliary tasks, as rows of the block outputs (n originals, then n mirrors)."""

    category: np.ndarray  # [n] category class of every image
    category_rows: np.ndarray
    type_rows: np.ndarray
    type_labels: np.ndarray


def training_tasks(data: CategoryExamples, catalog: Path, classes: tuple[str, ...], types: tuple[str, ...]) -> Tasks:
    """Category: every training row of the development data; apparel type: the catalog views of training styles.
    Mirrored copies are training rows too."""
    n = len(data.paths)
    category = np.array([classes.index(c) for c in data.classes])
    category_rows = np.flatnonzero(~np.array(data.validation))
    row_of = {str(p.resolve()): i for i, p in enumerate(data.paths)}
    apparel = types_from_manifest(catalog)
    train_views = [i for i, g in enumerate(apparel.groups) if not is_validation(g)]
    type_rows = np.array([row_of[str(apparel.paths[i].resolve())] for i in train_views])
    type_labels = np.array([types.index(apparel.types[i]) for i in train_views])
    return Tasks(
        category,
        np.concatenate([category_rows, category_rows + n]),
        np.concatenate([type_rows, type_rows + n]),
        np.concatenate([type_labels, type_labels]),
    )


def fine_tune(
    trunk: nn.Module, blocks: np.ndarray, tasks: Tasks, n_classes: int, n_types: int, epochs: int, l2sp: float
) -> list[float]:
    """Train the trunk's `_conv_head` and `_bn1` in place (batch norm in eval mode) with the two cosine-softmax tasks
    and the L2-SP penalty; returns the last batch's loss of every epoch."""
    n = len(tasks.category)
    conv, bn = trunk._conv_head, trunk._bn1
    reference = [p.detach().clone() for p in [*conv.parameters(), *bn.parameters()]]
    category_classifier, type_classifier = nn.Linear(1280, n_classes), nn.Linear(1280, n_types)
    category_weight = balanced_class_weights(tasks.category[tasks.category_rows % n], n_classes)
    type_weight = balanced_class_weights(tasks.type_labels, n_types)
    parameters = [
        *conv.parameters(),
        *bn.parameters(),
        *category_classifier.parameters(),
        *type_classifier.parameters(),
    ]
    optimiser = torch.optim.Adam(parameters, lr=LR)
    rng = np.random.default_rng(SEED)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(tasks.category_rows)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            picks = rng.integers(0, len(tasks.type_rows), size=TYPE_BATCH)
            x = torch.from_numpy(blocks[np.concatenate([rows, tasks.type_rows[picks]])].astype(np.float32))
            embedding = nn.functional.normalize(trunk._swish(bn(conv(x))).mean(dim=(2, 3)), dim=1)
            loss = nn.functional.cross_entropy(
                category_classifier(embedding[: len(rows)]) * LOGIT_SCALE,
                torch.from_numpy(tasks.category[rows % n]),
                weight=category_weight,
            ) + nn.functional.cross_entropy(
                type_classifier(embedding[len(rows) :]) * LOGIT_SCALE,
                torch.from_numpy(tasks.type_labels[picks]),
                weight=type_weight,
            )
            loss = loss + l2sp * sum(
                ((p - q) ** 2).sum() for p, q in zip([*conv.parameters(), *bn.parameters()], reference)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        losses.append(round(float(loss.detach()), 4))
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grocery", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True, help="catalog manifest.csv")
    parser.add_argument("--out", type=Path, default=FINETUNED_HEAD)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--l2sp", type=float, default=L2SP)
    args = parser.parse_args(argv)
    # Seeded first: the classifiers' initial weights come from torch's global generator after the backbone loads
    # (once in block_outputs when not cached, once below), so this order is part of the result.
    torch.manual_seed(SEED)
    classes = load_catalog().category_head.classes
    types = load_catalog().get("apparel").types
    data = development_data(args.grocery, args.catalog, classes)
    started = time.perf_counter()
    blocks = block_outputs(data.paths, args.cache)
    blocks_s = time.perf_counter() - started
    tasks = training_tasks(data, args.catalog, classes, types)

    trunk = load_backbone(finetuned=False).trunk.eval()
    started = time.perf_counter()
    losses = fine_tune(trunk, blocks, tasks, len(classes), len(types), args.epochs, args.l2sp)
    train_s = time.perf_counter() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {"conv_head": copy.deepcopy(trunk._conv_head.state_dict()), "bn1": copy.deepcopy(trunk._bn1.state_dict())}
    torch.save(state, args.out)
    report = {
        "what": "EfficientNet-Lite0 _conv_head + _bn1 fine-tuned over the ImageNet weights "
        "(training.finetune_backbone)",
        "data": [str(args.grocery), str(args.catalog)],
        "tasks": {"category": list(classes), "apparel_type": list(types)},
        "training_rows": {"category": int(len(tasks.category_rows)), "apparel_type": int(len(tasks.type_rows))},
        "settings": {
            "epochs": args.epochs,
            "lr": LR,
            "l2sp": args.l2sp,
            "batch": BATCH,
            "type_batch": TYPE_BATCH,
            "logit_scale": LOGIT_SCALE,
            "seed": SEED,
            "batch_norm": "eval (ImageNet statistics)",
        },
        "loss_per_epoch": losses,
        "block_outputs_seconds": round(blocks_s, 1),
        "training_seconds": round(train_s, 1),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
