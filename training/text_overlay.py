"""Train the `text_overlay` check's head: a logistic regression over the OCR features of build_engines/ocr.py, on
development photos clean and with overlaid marketing text rendered on them (training.concepts.text_overlay: banners,
badges, price tags, watermarks, captions).

    python -m training.text_overlay [--data ../shared/data] [--per-source 100] [--min-precision 0.98]
        [--out build_engines/heads] [--cache .cache/text_overlay]

1. Photos: training halves (evaluation.compliance_concept.in_training_pool) of studio catalog photos, grocery phone
   photos and grocery iconic packshots (printed text on packaging that must NOT fire), and the products/ photos of
   the shops whose licence allows shipped weights (AbanteCart, OroCommerce, PrestaShop: OSL-3.0; Odoo: LGPL-3.0;
   Spree: BSD-3-Clause); the other shops (Smartstore, nopCommerce, Thelia, Vendure, Kickstart: GPL family) are kept
   for evaluation.text_overlay, never trained on. Each photo is used twice: clean, and with one overlay of a random
   kind, both re-encoded as JPEG q90 alike.
2. Features: the production preprocessing (preprocessing.runner with TEXT_IMAGE) and the served ONNX wrappers and
   numpy code (build_engines.text_overlay.LocalTextOverlay), cached per photo list in `--cache`.
3. A held-out 30% of the photos (both copies of a photo on one side) chooses the precision-first operating point:
   the highest recall at precision >= `--min-precision` (training.metrics), served as 0.5.
4. `text_overlay.json` (standardisation, weights, intercept, threshold: what the python model reads) and its card
   `text_overlay.md` land in `--out`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from build_engines.artifacts import HEADS_DIR
from build_engines.ocr import FEATURE_NAMES
from build_engines.text_overlay import HEAD_FILE, TEXT_OVERLAY
from training.concepts import OVERLAY_KINDS, text_overlay
from training.metrics import at_threshold, precision_first_threshold, roc_auc

TRAINING_SHOPS = ("abante", "oro", "odoo13", "ps14", "ps17", "spree")  # licences that allow shipped weights
UNSEEN_SHOPS = ("smartstore", "ssnet", "nop", "thelia", "vendure", "kickstart")
BATCH = 16


def in_training_pool(path: Path) -> bool:
    return int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) % 2 == 0


def sources(data: Path) -> dict[str, list[Path]]:
    """Every development photo by source; `products_train` / `products_unseen` split by shop."""
    products = sorted(p for p in (data / "products").iterdir() if p.suffix in (".jpg", ".png", ".webp"))
    return {
        "catalog": sorted((data / "catalog").glob("*.jpg")),
        "grocery_phone": sorted((data / "grocery" / "train").rglob("*.jpg")),
        "grocery_phone_val": sorted((data / "grocery" / "val").rglob("*.jpg")),
        "grocery_iconic": sorted((data / "grocery" / "iconic-images-and-descriptions").rglob("*.jpg")),
        "products_train": [p for p in products if p.name.split("_")[0] in TRAINING_SHOPS],
        "products_unseen": [p for p in products if p.name.split("_")[0] in UNSEEN_SHOPS],
    }


def pick(paths: list[Path], count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.permutation(len(paths))[:count])]


def rendered(path: Path, kind: str | None, seed: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The photo as JPEG q90 (clean when `kind` is None, else with that overlay kind), the share of its pixels the
    overlay changed, and the changed pixels' centre (row, column on the unit square; NaN when clean)."""
    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            clean = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        else:
            clean = image.convert("RGB")
    picture, share, centre = clean, 0.0, (float("nan"), float("nan"))
    if kind is not None:
        picture = text_overlay(clean, np.random.default_rng(seed), kind)
        changed = np.abs(np.asarray(picture, np.int16) - np.asarray(clean, np.int16)).sum(axis=2) > 24
        share = float(changed.mean())
        if changed.any():
            rows, cols = np.nonzero(changed)
            centre = (float(rows.mean() / changed.shape[0]), float(cols.mean() / changed.shape[1]))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8), share, centre


class Featuriser:
    """Photos -> FEATURE_NAMES rows through the served preprocessing and models (in this process)."""

    def __init__(self, scratch: Path):
        from build_engines.text_overlay import LocalTextOverlay
        from preprocessing.runner import PreprocessRunner

        self.runner = PreprocessRunner(max_batch=BATCH, threads=1, text=True)
        self.models = LocalTextOverlay(scratch)

    def __call__(self, files: list[np.ndarray]) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        from contract.tensors import ORIG_SIZE, TEXT_IMAGE, THUMB, VALID

        rows, lines = [], []
        for start in range(0, len(files), BATCH):
            out = self.runner.run(files[start : start + BATCH])
            analysed = self.models.analyse(out[TEXT_IMAGE.name], out[ORIG_SIZE.name], out[THUMB.name])
            for valid, (values, read) in zip(out[VALID.name][:, 0], analysed):
                rows.append(values if valid else np.full(len(FEATURE_NAMES), np.nan, np.float32))
                lines.append(read)
        return np.array(rows, np.float32).reshape(-1, len(FEATURE_NAMES)), lines


def featurise(
    featuriser: Featuriser, photos: list[tuple[Path, str | None, int]], cache: Path | None
) -> dict[str, np.ndarray]:
    """(path, kind or None, seed) -> features, overlay share and centre; cached under `cache` by the list's hash."""
    key = hashlib.sha1(repr([(str(p), k, s) for p, k, s in photos]).encode() + repr(FEATURE_NAMES).encode())
    cached = cache / f"{key.hexdigest()[:16]}.npz" if cache else None
    if cached and cached.exists():
        return dict(np.load(cached))
    files, shares, centres = [], [], []
    for path, kind, seed in photos:
        data, share, centre = rendered(path, kind, seed)
        files.append(data)
        shares.append(share)
        centres.append(centre)
    values, _ = featuriser(files)
    result = {"features": values, "share": np.array(shares), "centre": np.array(centres).reshape(-1, 2)}
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **result)
    return result


def training_photos(data: Path, per_source: int) -> dict[str, list[Path]]:
    pools = sources(data)
    chosen = {}
    for name in ("catalog", "grocery_phone", "grocery_iconic", "products_train"):
        pool = [p for p in pools[name] if in_training_pool(p)]
        chosen[name] = pick(pool, min(per_source, len(pool)), seed=0)
    return chosen


def fit(features: np.ndarray, truth: np.ndarray, held_out: np.ndarray, min_precision: float) -> tuple[dict, dict]:
    """Logistic regression on the training rows (standardised, balanced classes), threshold precision-first on the
    held-out rows. Returns the served head (build_engines.ocr.load_head's format) and the held-out report."""
    from sklearn.linear_model import LogisticRegression

    from build_engines.ocr import served_score

    train = ~held_out
    mean = features[train].mean(axis=0)
    scale = features[train].std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    model.fit((features[train] - mean) / scale, truth[train])
    probability = model.predict_proba((features[held_out] - mean) / scale)[:, 1]
    threshold = float(np.clip(precision_first_threshold(probability, truth[held_out], min_precision), 1e-6, 1 - 1e-6))
    head = {
        "name": TEXT_OVERLAY,
        "features": list(FEATURE_NAMES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
        "threshold": threshold,
    }
    served = served_score(features[held_out], head)
    report = {
        "roc_auc": round(roc_auc(probability, truth[held_out]), 4),
        "at_threshold": at_threshold(served, truth[held_out], 0.5),
    }
    return head, report


def train(data: Path, per_source: int, min_precision: float, cache: Path | None, held_out_share: float = 0.3):
    chosen = training_photos(data, per_source)
    kinds_rng = np.random.default_rng(1)
    photos, source_of, is_held_out = [], [], []
    for name, paths in chosen.items():
        for k, path in enumerate(paths):
            held = int(hashlib.sha1(b"held" + path.name.encode()).hexdigest()[:8], 16) % 100 < held_out_share * 100
            kind = str(kinds_rng.choice(OVERLAY_KINDS))
            photos += [(path, None, k), (path, kind, k)]
            source_of += [name, name]
            is_held_out += [held, held]
    with tempfile.TemporaryDirectory(prefix="imgsel-text-") as scratch:
        result = featurise(Featuriser(Path(scratch)), photos, cache)
    features = result["features"]
    truth = np.array([kind is not None for _, kind, _ in photos], int)
    usable = ~np.isnan(features).any(axis=1)
    features, truth, held_out = features[usable], truth[usable], np.array(is_held_out)[usable]
    head, report = fit(features, truth, held_out, min_precision)
    card = {
        "check": TEXT_OVERLAY,
        "method": "logistic regression (scikit-learn, balanced classes, C=1, standardised) over build_engines/ocr.py's "
        "features of PP-OCRv4 detection + recognition (rapidocr-onnxruntime 1.4.4's ONNX files)",
        "data": {name: len(paths) for name, paths in chosen.items()},
        "data_root": str(data),
        "images": {"clean": int((truth == 0).sum()), "rendered": int((truth == 1).sum())},
        "held_out": {"images": int(held_out.sum()), "min_precision": min_precision, **report},
        "weights": dict(zip(FEATURE_NAMES, np.round(head["weights"], 4).tolist())),
        "licences": "catalog: Magento sample data OSL-3.0/AFL-3.0; grocery: Grocery Store Dataset MIT; products: "
        "AbanteCart, OroCommerce, PrestaShop OSL-3.0, Odoo 13 LGPL-3.0, Spree BSD-3-Clause",
    }
    return head, card


def write(head: dict, card: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / HEAD_FILE
    path.write_text(json.dumps({**head, "card": card}, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-source", type=int, default=100)
    parser.add_argument("--min-precision", type=float, default=0.98)
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--cache", type=Path, default=Path(".cache/text_overlay"))
    args = parser.parse_args(argv)
    if not (args.data / "catalog").is_dir():
        raise SystemExit(f"{args.data}: no development data (catalog/, grocery/, products/)")
    head, card = train(args.data, args.per_source, args.min_precision, args.cache)
    print(json.dumps(card, indent=1))
    print(f"wrote {write(head, card, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
