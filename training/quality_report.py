"""The numbers of quality.json: metrics per head on the calibration and test halves (with the classical baselines,
studio vs scene), flag rates by sample kind and by blur strength, false flags on untransformed photos, recall on the
unseen real placeholder family, the description of data, labels and training, and the exported model's latency."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from contract.tensors import EMBEDDING, EMBEDDING_DIM, QUALITY_FEATURES, QUALITY_OUTPUTS
from preprocessing.pipeline import BLUR_SIDE
from training import quality_data as qd
from training import quality_model as qm
from training.metrics import metrics_where_labelled
from training.quality_dataset import Dataset
from training.quality_samples import (
    HARD_NEGATIVE_KINDS,
    HELD_OUT_PLACEHOLDER_FAMILY,
    PHOTO_KINDS,
    PLACEHOLDER_KINDS,
    ROLES,
    SCENE_KINDS,
    SEED,
    STUDIO_KINDS,
)
from training.splits import TEST_SALT

FLAGGED = 0.5  # every served score is 0.5 at its head's threshold
SIGMA_BINS = (0.0, 0.25, 0.4, 0.6, 0.8, 1.0, 1.5, 2.5, 100.0)  # blur sigma at the working resolution, px


def metrics_by_role(ds: Dataset, scores: np.ndarray, classical: np.ndarray) -> dict:
    """Per role (test, calibration): every head, the classical baselines, and blur / small_object on studio-only and
    scene-only samples."""
    metrics = {}
    for role in ("test", "calibration"):
        rows = ds.rows(role)
        role_metrics = {
            name: metrics_where_labelled(scores[rows, j], ds.labels[rows, j]) for j, name in enumerate(QUALITY_OUTPUTS)
        }
        role_metrics["blur_baseline_laplacian"] = metrics_where_labelled(classical[rows, 0], ds.labels[rows, 0])
        role_metrics["small_object_baseline_box_area"] = metrics_where_labelled(classical[rows, 1], ds.labels[rows, 1])
        for background, kinds in (("studio", STUDIO_KINDS), ("scene", SCENE_KINDS)):
            part = ds.rows(role, kinds)
            for j, name in ((0, "blur"), (1, "small_object")):
                role_metrics[f"{name}_{background}_only"] = metrics_where_labelled(scores[part, j], ds.labels[part, j])
                role_metrics[f"{name}_{background}_only_classical"] = metrics_where_labelled(
                    classical[part, j], ds.labels[part, j]
                )
        metrics[role] = role_metrics
    return metrics


def flag_rates_by_kind(ds: Dataset, scores: np.ndarray) -> dict:
    """Share of test samples of each kind that each head flags."""
    by_kind = {}
    for kind in PHOTO_KINDS + HARD_NEGATIVE_KINDS + PLACEHOLDER_KINDS:
        rows = ds.rows("test", (kind,))
        if rows.size:
            by_kind[kind] = {
                "n": int(rows.size),
                "flagged": {
                    name: round(float((scores[rows, j] >= FLAGGED).mean()), 4) for j, name in enumerate(QUALITY_OUTPUTS)
                },
            }
    return by_kind


def untransformed_photos(ds: Dataset, scores: np.ndarray, classical: np.ndarray) -> dict:
    """False flags on untransformed held-out photos (catalog, grocery iconic, in-store)."""

    def flag_rates(rows: np.ndarray) -> dict:
        return {
            "n": int(rows.size),
            "flagged_any": round(float((scores[rows] >= FLAGGED).any(axis=1).mean()), 4),
            **{name: round(float((scores[rows, j] >= FLAGGED).mean()), 4) for j, name in enumerate(QUALITY_OUTPUTS)},
            "classical_blur": round(float((classical[rows, 0] >= FLAGGED).mean()), 4),
            "classical_small_object": round(float((classical[rows, 1] >= FLAGGED).mean()), 4),
        }

    real = ds.rows("test", ("original",))
    return {
        "note": "share of untransformed held-out photos flagged (score >= 0.5): false positives, these are fine",
        "catalog_and_grocery_iconic": flag_rates(real),
        "catalog": flag_rates(np.array([i for i in real if ds.specs[i].group.startswith("catalog:")])),
        "grocery_iconic": flag_rates(np.array([i for i in real if ds.specs[i].group.startswith("grocery:")])),
        "grocery_in_store": {
            **flag_rates(ds.rows("test", ("in_store",))),
            "note": "phone photos: small_object / placeholder flags are false positives; blur is unlabelled "
            "(some of these photos are really blurry), its rate is for information",
        },
    }


def blur_by_sigma(ds: Dataset, scores: np.ndarray, classical: np.ndarray) -> list[dict]:
    """Blur flag rate of the crop-and-resize kinds per band of blur strength (test)."""
    sweep = ds.rows("test", ("sweep", "soft", "blur", "crop"))
    by_sigma = []
    for low, high in zip(SIGMA_BINS[:-1], SIGMA_BINS[1:]):
        sel = sweep[(ds.sigma_work[sweep] >= low) & (ds.sigma_work[sweep] < high)]
        if sel.size:
            by_sigma.append(
                {
                    "sigma_work_px": [low, high],
                    "n": int(sel.size),
                    "flagged_blur": round(float((scores[sel, 0] >= FLAGGED).mean()), 4),
                    "classical_flagged_blur": round(float((classical[sel, 0] >= FLAGGED).mean()), 4),
                }
            )
    return by_sigma


def unseen_real_placeholders(ds: Dataset, scores: np.ndarray) -> dict:
    held_out = ds.rows("test", ("ph_real",))
    placeholder = QUALITY_OUTPUTS.index("placeholder")
    return {
        "family": HELD_OUT_PLACEHOLDER_FAMILY,
        "n": int(held_out.size),
        "recall": round(float((scores[held_out, placeholder] >= FLAGGED).mean()), 4),
        "originals_on_white_recall": round(
            float(np.mean([scores[i, placeholder] >= FLAGGED for i in held_out if ds.specs[i].key.endswith(":0")])), 4
        ),
    }


def count_by_kind(ds: Dataset, rows: np.ndarray) -> dict:
    counts: dict[str, int] = {}
    for i in rows:
        counts[ds.specs[i].kind] = counts.get(ds.specs[i].kind, 0) + 1
    return counts


def description(data: Path, ds: Dataset, offsets: list[float], thresholds: dict, min_precision: float) -> dict:
    """What quality.json says about the model, its thresholds, labels, data, split and training."""
    return {
        "model": "quality",
        "outputs": list(QUALITY_OUTPUTS),
        "inputs": {
            EMBEDDING.name: "backbone embedding [1280]",
            QUALITY_FEATURES.name: "raw [laplacian_variance, "
            "object_area_fraction] from the preprocess model; log10(x + floor) inside the model",
            "feature_floor": list(qm.FEATURE_FLOOR),
        },
        "architecture": f"standardise -> Linear({EMBEDDING_DIM + 2}, {qm.HIDDEN}) -> ReLU -> Linear({qm.HIDDEN}, 3) -> "
        "sigmoid(logit - logit(threshold))",
        "thresholds": {
            "note": f"chosen on the calibration half (highest recall at precision >= {min_precision}, on the logit "
            "scale); as raw sigmoid probabilities. The exported model subtracts logit(threshold), so the served "
            "score is 0.5 exactly at the threshold (categories.toml *_max = 0.5).",
            **{name: round(t, 4) for name, t in thresholds.items()},
            "logit_offsets": {name: round(o, 4) for name, o in zip(QUALITY_OUTPUTS, offsets)},
        },
        "labels": {
            "blur": f"Gaussian sigma (or motion-blur length / sqrt(12)) at the <= {BLUR_SIDE} px working "
            f"resolution: >= {qd.BLUR_POSITIVE_SIGMA} px blurry, <= {qd.BLUR_NEGATIVE_SIGMA} px acceptable "
            "(untransformed, crop-and-resize and mildly soft copies), in between unlabelled",
            "small_object": f"object box area fraction < {qd.SMALL_POSITIVE_AREA} small, >= {qd.SMALL_NEGATIVE_AREA} "
            "fine, in between unlabelled",
            "placeholder": "1 for rendered and real placeholders, 0 for every photo-derived image",
        },
        "data": {
            "root": str(data),
            "catalog": "catalog/*.jpg (Magento 2 sample data, OSL-3.0/AFL-3.0)",
            "grocery": "grocery iconic images, in-store photos as scene backgrounds (Grocery Store Dataset, MIT)",
            "placeholders": "placeholders/*.png (Solidus BSD-3, OpenCart GPLv3); rendered ones with DejaVu/Liberation "
            f"fonts; real family held out: {HELD_OUT_PLACEHOLDER_FAMILY}",
            "other_shops": "products/ (training.datasets.shop_photos): photos of shops whose licence lets them train "
            "shipped weights (AbanteCart, OroCommerce, PrestaShop OSL-3.0; Odoo LGPL-3.0; Spree BSD-3; Vendure's "
            "Unsplash photos) split by product, as placeholder negatives and as sources of the rendered hard "
            "negatives; GPL/AGPL shops (Smartstore, Thelia, nopCommerce, Commerce Kickstart) in test only; "
            "products/placeholders of the same licences as placeholders (nopCommerce, Smartstore: test only)",
            "hard_negative_kinds": list(HARD_NEGATIVE_KINDS),
            "photo_kinds": list(PHOTO_KINDS),
            "placeholder_kinds": list(PLACEHOLDER_KINDS),
        },
        "seed": SEED,
        "split": "by source: catalog style, grocery product, placeholder phrase (type_heads.is_validation, salted); "
        f"validation groups halved into calibration / test by a second salted sha256 ({TEST_SALT!r})",
        "counts": {role: count_by_kind(ds, ds.rows(role)) for role in ROLES},
        "training": {
            "steps": qm.STEPS,
            "optimizer": "Adam lr 3e-3 full batch",
            "weight_decay": qm.WEIGHT_DECAY,
            "embedding_dropout": qm.EMBEDDING_DROPOUT,
            "loss": "masked class-balanced BCE",
        },
    }


def latency(path: Path) -> dict:
    """Per-image time of the exported model with onnxruntime on one CPU thread, at batch 1 and 64."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    result = {}
    for batch in (1, 64):
        feeds = {
            EMBEDDING.name: np.random.default_rng(0).normal(size=(batch, EMBEDDING_DIM)).astype(np.float32),
            QUALITY_FEATURES.name: np.full((batch, 2), 500.0, np.float32),
        }
        for _ in range(20):
            session.run(None, feeds)
        repeats = 400 if batch == 1 else 50
        started = time.perf_counter()
        for _ in range(repeats):
            session.run(None, feeds)
        per_image_us = (time.perf_counter() - started) / repeats / batch * 1e6
        result[f"batch_{batch}_us_per_image"] = round(per_image_us, 1)
    return result
