"""The served `text_overlay` check (PP-OCRv4 + the committed head, build_engines/heads/text_overlay.json) on photos it
was never trained on: false positives on clean photos per source, recall on the same photos with overlays rendered on
them per kind (banner, badge, price tag, watermark, caption), per source, per overlay size and position.

    python -m evaluation.text_overlay [--data ../shared/data] [--clean-per-source 100] [--rendered-per-source 30]
        [--json PATH]

- Sources, all outside training (training.text_overlay): the evaluation halves of the studio catalog and the grocery
  iconic packshots, grocery phone photos of the val split, and products/ of the shops never trained on (Smartstore,
  nopCommerce with its books and software boxes, Thelia, Vendure, Kickstart).
- Every photo, clean or rendered on, goes through JPEG q90 and the served preprocessing and models in this process
  (training.text_overlay.Featuriser: the same ONNX wrappers and numpy code as the Triton models).
- Size: the share of the picture's pixels the overlay changed; position: the changed pixels' centre in the band along
  the edges (outer 20% of height or width) or inside it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from build_engines.ocr import load_head, served_score
from build_engines.text_overlay import HEAD_FILE
from tools.json_output import emit
from training.concepts import OVERLAY_KINDS
from training.text_overlay import Featuriser, featurise, in_training_pool, pick, sources

SIZE_BINS = ((0.0, 0.02), (0.02, 0.05), (0.05, 0.15), (0.15, 1.01))
EDGE = 0.2


def unseen_pools(data: Path) -> dict[str, list[Path]]:
    pools = sources(data)
    return {
        "catalog": [p for p in pools["catalog"] if not in_training_pool(p)],
        "grocery_phone_val": pools["grocery_phone_val"],
        "grocery_iconic": [p for p in pools["grocery_iconic"] if not in_training_pool(p)],
        "products_unseen_shops": pools["products_unseen"],
    }


def rate(flags: np.ndarray) -> dict:
    return {"images": int(flags.size), "rate": round(float(flags.mean()), 4) if flags.size else None}


def evaluate(data: Path, clean_per_source: int, rendered_per_source: int, cache: Path | None, head_path: Path) -> dict:
    head = load_head(head_path)
    pools = unseen_pools(data)
    report: dict = {"data": str(data), "head": str(head_path), "threshold": head["threshold"], "clean": {}}
    rendered_rows = []  # (source, kind, share, centre, flagged)
    with tempfile.TemporaryDirectory(prefix="imgsel-text-eval-") as scratch:
        featuriser = Featuriser(Path(scratch))
        for name, pool in pools.items():
            clean = pick(pool, min(clean_per_source, len(pool)), seed=2)
            result = featurise(featuriser, [(p, None, k) for k, p in enumerate(clean)], cache)
            usable = ~np.isnan(result["features"]).any(axis=1)
            flagged = served_score(result["features"][usable], head) >= 0.5
            report["clean"][name] = {
                "photos": int(usable.sum()),
                "false_positives": int(flagged.sum()),
                "false_positive_rate": round(float(flagged.mean()), 4),
                "flagged": [p.name for p, hit in zip(np.array(clean)[usable], flagged) if hit][:10],
            }
            rendered = pick(pool, min(rendered_per_source, len(pool)), seed=3)
            photos = [(p, kind, 1000 + k) for k, p in enumerate(rendered) for kind in OVERLAY_KINDS]
            result = featurise(featuriser, photos, cache)
            usable = ~np.isnan(result["features"]).any(axis=1)
            scores = served_score(np.nan_to_num(result["features"]), head)
            for (_, kind, _), ok, score, share, centre in zip(
                photos, usable, scores, result["share"], result["centre"]
            ):
                if ok:
                    rendered_rows.append((name, kind, share, centre, bool(score >= 0.5)))
    kinds = np.array([r[1] for r in rendered_rows])
    names = np.array([r[0] for r in rendered_rows])
    shares = np.array([r[2] for r in rendered_rows])
    centres = np.array([r[3] for r in rendered_rows])
    hits = np.array([r[4] for r in rendered_rows])
    at_edge = (np.minimum(centres, 1 - centres) < EDGE).any(axis=1)
    report["recall"] = {
        "all": rate(hits),
        "by_kind": {kind: rate(hits[kinds == kind]) for kind in OVERLAY_KINDS},
        "by_source": {name: rate(hits[names == name]) for name in pools},
        "by_size": {
            f"{lo:.0%}-{min(hi, 1):.0%} of pixels": rate(hits[(shares >= lo) & (shares < hi)]) for lo, hi in SIZE_BINS
        },
        "by_position": {"edge band": rate(hits[at_edge]), "inside": rate(hits[~at_edge])},
    }
    false_positives = sum(v["false_positives"] for v in report["clean"].values())
    clean_total = sum(v["photos"] for v in report["clean"].values())
    # Precision on a pool with as many rendered as clean photos, from the two rates.
    fpr, tpr = false_positives / max(clean_total, 1), float(hits.mean())
    report["balanced_precision"] = round(tpr / (tpr + fpr), 4) if tpr + fpr else None
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--clean-per-source", type=int, default=100)
    parser.add_argument("--rendered-per-source", type=int, default=30)
    parser.add_argument("--head", type=Path, default=HEADS_DIR / HEAD_FILE)
    parser.add_argument("--cache", type=Path, default=Path(".cache/text_overlay"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "catalog").is_dir():
        raise SystemExit(f"{args.data}: no development data (catalog/, grocery/, products/)")
    emit(
        evaluate(args.data, args.clean_per_source, args.rendered_per_source, args.cache, args.head), args.json, indent=2
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
