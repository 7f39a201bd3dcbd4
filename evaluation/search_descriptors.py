"""Training-free retrieval descriptors of the served backbone, measured on the issue #15 search protocols.

    python -m evaluation.search_descriptors [--data ../shared/data] [--json out.json]

Why: the trained search head (training.search_head) lifts recall on the products it trained on but not on new ones
(BENCHMARKS.md "one catalog picture per product"), and the issue's target is products and shops no training saw.
Descriptors that learn nothing about the products cannot overfit them: pooling choices over the backbone's feature
maps (mean = EMBEDDING today; GeM, generalised-mean pooling, which weights the strongest activations, the standard
instance-retrieval pooling; max), the final map with the fine-tuned or the ImageNet weights, and the last block's
map before the head's 1x1 convolution; each also after PCA whitening fitted on unlabelled pictures that no query or
index picture comes from (grocery train photos of the non-held-out products, the catalog, the trainable shops).

Protocols, as evaluation.search_recall:
- iconic: the 296 grocery validation photos (and the 87 of held-out products) against the 81 iconic images, flat /
  cascade top-1 / cascade top-2 / oracle partition; routing by the category head on EMBEDDING (unchanged).
- multi-view: every picture of a multi-view product of a GPL/AGPL shop (never trained on) against all products/
  pictures, itself left out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from contract.categories_file import load_catalog
from evaluation.search_recall import category_probabilities, routed_recall
from tools.json_output import emit
from training.datasets import DEFAULT_DATA
from training.embedding_cache import DEFAULT_CACHE

GEM_POWERS = (3.0,)
WHITEN_DIMS = (None, 512, 256)  # None: every component (only the shrunk eigenvalues differ from plain PCA)


def pooled(feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pooled descriptors of one [B, C, H, W] map (activations are >= 0 after ReLU6)."""
    x = feature_map.clamp(min=1e-6)
    out = {"mean": x.mean(dim=(2, 3)), "max": x.amax(dim=(2, 3))}
    for p in GEM_POWERS:
        out[f"gem{p:g}"] = x.pow(p).mean(dim=(2, 3)).pow(1.0 / p)
    return out


def descriptors(paths: list[Path], batch: int = 32) -> dict[str, np.ndarray]:
    """Every candidate descriptor of `paths`, through the production preprocessing."""
    from build_engines.backbone import load_backbone
    from contract.tensors import PIXELS
    from preprocessing.runner import PreprocessRunner

    tuned, imagenet = load_backbone(), load_backbone(finetuned=False)
    runner = PreprocessRunner(max_batch=batch)
    parts: dict[str, list[np.ndarray]] = {}

    def trunk_maps(trunk, pixels) -> tuple[torch.Tensor, torch.Tensor]:
        x = trunk._swish(trunk._bn0(trunk._conv_stem(pixels)))
        for block in trunk._blocks:
            x = block(x)
        return x, trunk._swish(trunk._bn1(trunk._conv_head(x)))

    for start in range(0, len(paths), batch):
        files = [np.fromfile(p, dtype=np.uint8) for p in paths[start : start + batch]]
        pixels = torch.from_numpy(runner.run(files)[PIXELS.name])
        with torch.no_grad():
            block, head = trunk_maps(tuned.trunk, pixels)
            _, head_imagenet = trunk_maps(imagenet.trunk, pixels)
        for source, fmap in (("head", head), ("head_imagenet", head_imagenet), ("block", block)):
            for pool, v in pooled(fmap).items():
                parts.setdefault(f"{source}/{pool}", []).append(v.numpy())
    return {name: np.concatenate(v).astype(np.float32) for name, v in parts.items()}


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_whitening(x: np.ndarray, dims: int | None, shrink: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """PCA whitening of L2-normalised descriptors: (mean, projection). Eigenvalues raised to -shrink (0.5: full
    whitening; less keeps some of the dominant directions' weight), a floor against tiny ones."""
    x = l2(x)
    mean = x.mean(axis=0)
    covariance = np.cov((x - mean).T)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][: dims or len(values)]
    values = np.maximum(values[order], values[order][0] * 1e-4)
    return mean, vectors[:, order] * values**-shrink


def apply_whitening(x: np.ndarray, mean: np.ndarray, projection: np.ndarray) -> np.ndarray:
    return l2((l2(x) - mean) @ projection)


def main(argv: list[str] | None = None) -> int:
    from training import search_head

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    data = search_head.retrieval_data(args.data, args.cache_dir)
    parts = search_head.splits(data)
    valid = np.array(data.valid)
    grocery = np.array([s == "grocery" for s in data.source]) & valid
    catalog = np.array(data.catalog)
    iconic = np.flatnonzero(grocery & catalog)
    photos = grocery & ~catalog & np.array(data.evaluation_only)
    shops = np.array([s == "products" for s in data.source]) & valid
    unseen_shops = np.flatnonzero(shops & np.array(data.evaluation_only))
    # Whitening learns from pictures that are neither queries nor index nor the held-out products' photos.
    fit_rows = np.flatnonzero(parts.trainable & ~parts.unseen & valid & ~(grocery & catalog))
    rows = np.unique(np.concatenate([iconic, np.flatnonzero(photos), np.flatnonzero(shops), fit_rows]))
    started = time.process_time()
    found = descriptors([data.paths[i] for i in rows])
    full = {name: np.zeros((data.n, v.shape[1]), np.float32) for name, v in found.items()}
    for name, v in found.items():
        full[name][rows] = v
    report: dict = {"descriptor_cpu_s": round(time.process_time() - started, 1), "fit_pictures": len(fit_rows)}

    classes = load_catalog().category_head.classes
    probs = category_probabilities(data.embeddings[: data.n])
    query_sets = {"all": np.flatnonzero(photos), "held_out": np.flatnonzero(photos & parts.unseen)}
    index_meta = [(data.products[i], data.partition[i]) for i in iconic]
    variants: dict[str, np.ndarray] = {"EMBEDDING (served)": data.embeddings[: data.n]}
    for name, x in full.items():
        variants[name] = l2(x)
        for dims in WHITEN_DIMS:
            mean, projection = fit_whitening(x[fit_rows], dims)
            variants[f"{name} + whiten{dims or ''}"] = apply_whitening(x, mean, projection)
    report["results"] = []
    for name, z in variants.items():
        row: dict = {"descriptor": name}
        for query_name, q in query_sets.items():
            truth = [(data.products[i], data.partition[i]) for i in q]
            for mode in ("flat", "cascade1", "cascade2", "oracle"):
                r = routed_recall(z[q], truth, probs[q], classes, z[iconic], index_meta, mode)
                row[f"{query_name}/{mode}"] = (r["recall_at_1"], r["recall_at_5"])
        mv = search_head.multiview(data, z, unseen_shops, np.flatnonzero(shops))
        row["multiview"] = (mv["recall_at_1"], mv["recall_at_5"])
        report["results"].append(row)
        print(
            f"{name:38s} all flat {row['all/flat']} casc1 {row['all/cascade1']} | held-out flat "
            f"{row['held_out/flat']} casc1 {row['held_out/cascade1']} | multiview {row['multiview']}",
            flush=True,
        )
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
