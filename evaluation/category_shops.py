"""The top-level category head on shops it never trained on (issue #15): the products/ photos of the shops whose
licence keeps them out of shipped weights (Smartstore, Thelia, nopCommerce, Commerce Kickstart; training.datasets
.trainable), through the production preprocessing and a served vision model's CATEGORY_PROBS.

Per image and per product (the gateway's rule, gateway.decisions.category.predict_category: the mean over the
product's images, trusted at `min_confidence`, else `default`):
- products of a class (training.datasets.SHOP_CATEGORY_CLASSES: footwear, furniture, bags and sports as gear; a
  class the served head lacks is never right): the share whose winning class is right (the visual-search
  partition), and whose category is right (evaluation.category_shops.true_category; a shoe belongs under
  `footwear` whether or not the head has the class);
- products of no class (other, home, kitchen, electronics, beauty, ...) and every product: the share routed to a
  category other than `default` that is not theirs (the harm a wrong prediction does: a chair under apparel's
  rules, a lipstick under grocery's).

A vision model whose head is narrower than `[category_head] classes` (before classes were added: classes are only
ever appended) is read with the first classes.

    python -m evaluation.category_shops [--vision model_repository/analyze/1/vision.onnx] [--json F]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from build_engines.repository import vision_onnx
from contract.categories import DEFAULT_CATEGORY
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_OUTPUT
from gateway.decisions.category import predict_category
from training.datasets import DEFAULT_DATA, SHOP_CATEGORY_CLASSES, shop_photos


def true_category(manifest_category: str, routes: dict[str, str], categories: set[str]) -> str:
    """The category a product of this manifest category should be curated as: its class's route where the head has
    the class, else the category of the manifest's name where categories.toml has one (footwear), else `default`."""
    cls = SHOP_CATEGORY_CLASSES.get(manifest_category)
    if cls in routes:
        return routes[cls]
    return manifest_category if manifest_category in categories else DEFAULT_CATEGORY


def main(argv: list[str] | None = None) -> int:
    from evaluation.vision_runtime import SERVED, analyse_with_vision

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vision", type=Path, default=vision_onnx(Path("model_repository")))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    photos = [p for p in shop_photos(args.data) if not p.trainable]
    if not photos:
        raise SystemExit(f"{args.data}: no products/ photos of never-trained shops")
    analysis = analyse_with_vision(args.vision, [np.fromfile(p.path, np.uint8) for p in photos])
    probabilities = analysis.outputs[SERVED][CATEGORY_HEAD_OUTPUT]
    catalog = load_catalog()
    head = catalog.category_head
    head = replace(head, classes=head.classes[: probabilities.shape[1]])  # an older, narrower head
    routes, categories = dict(head.routes), set(catalog.names())

    by_product: dict[str, list[int]] = defaultdict(list)
    for row, photo in enumerate(photos):
        by_product[photo.product].append(row)
    rows = []
    for product, members in by_product.items():
        manifest_category = photos[members[0]].category
        prediction = predict_category([probabilities[r] for r in members], head)
        routed = prediction.category if prediction and prediction.trusted else DEFAULT_CATEGORY
        truth = true_category(manifest_category, routes, categories)
        rows.append(
            {
                "product": product,
                "shop": photos[members[0]].shop,
                "manifest_category": manifest_category,
                "head_class": SHOP_CATEGORY_CLASSES.get(manifest_category),
                "top_class": prediction.top_class if prediction else None,
                "trusted": bool(prediction and prediction.trusted),
                "routed": routed,
                "right_class": bool(prediction)
                and prediction.top_class == SHOP_CATEGORY_CLASSES.get(manifest_category),
                "right_category": routed == truth,
                "misrouted": routed != truth and routed != DEFAULT_CATEGORY,
            }
        )

    def share(selected: list[dict], key: str) -> float | None:
        return round(sum(r[key] for r in selected) / len(selected), 3) if selected else None

    report: dict = {"vision": str(args.vision), "classes": list(head.classes), "photos": len(photos)}
    groups = {"all products": rows, "of a head class": [r for r in rows if r["head_class"]]}
    groups |= {
        f"class {c}": [r for r in rows if r["head_class"] == c] for c in sorted(set(SHOP_CATEGORY_CLASSES.values()))
    }
    groups["of no head class"] = [r for r in rows if not r["head_class"]]
    for name, selected in groups.items():
        report[name] = {
            "products": len(selected),
            "right_class": share(selected, "right_class"),
            "right_category": share(selected, "right_category"),
            "misrouted": share(selected, "misrouted"),
            "trusted": share(selected, "trusted"),
            "routed_to": dict(
                sorted({r["routed"]: sum(x["routed"] == r["routed"] for x in selected) for r in selected}.items())
            ),
        }
        print(name, json.dumps(report[name]))
    report["products"] = rows
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
