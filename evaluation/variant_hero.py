"""Own variant as hero (issue #15): development products with a planted front image of another colourway of the same
style, sent by another supplier and placed first in input order, through the real selection
(gateway.decisions.selection.select) with real colour histograms and sizes from the production preprocessing and
types from the served apparel head or the manifest (evaluation.variant_data).

Reports, per data set (catalog: Magento apparel, where the threshold is calibrated; products: colourway families of
other shops, never used to choose anything):
- hero = own variant: the first selected image is one of the product's own, before (the check off) and after;
- false inconsistent: the share of a product's own images called inconsistent when nothing is planted;
- two planted: the other colourway's front and another view of it (2 of up to 5 images), hero = own;
- colour_named: the same with the request naming the product's colour (product_colour: the colour words of its key),
  the check's consensus and flag then reading each image's share of that colour.
Another colourway whose front is one of the product's own photographs filed under a second colour (Magento's wsh05,
wsh10, wb02; evaluation.dedup.audit) is not planted: no colour signal can tell them apart. Products with fewer own
images than the check needs (1 own + 1 planted) are counted apart: without a supplier
priority nothing tells which colour is the product's, and the check stays off (the old order stands); with the own
supplier preferred (`supplier_priority`), the priority decides.
Catalog products whose own photographs show two different colours (OWN_PHOTOS_DISAGREE: the `main` shot in one
colour, the back or close-up in another) are kept in every figure and also reported apart: there "the product's own
variant" has no single colour for any signal to agree with.

    python -m evaluation.variant_hero --vision <repo>/analyze/1/vision.onnx [--sweep] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from contract.categories import Category, VariantThresholds
from contract.categories_file import load_catalog
from contract.colours import colour_terms
from evaluation.dedup.audit import same_photo
from evaluation.variant_data import VariantImages, VariantListing, load_variant_images
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.image_types import type_from_head
from gateway.decisions.selection import select
from gateway.hashing import ImageHashes

OWN, OTHER = "own", "other"

# Catalog products (style-colour) whose own photographs disagree in colour: the `main` garment is visibly another
# colour than the product's back / close-up (mh13-blue: teal front, light-blue back; mp07-blue: bright-blue front,
# navy back; wt02-orange: orange front, pink back). From a visual audit of every catalog product with at least 2 own
# images (72, montages of their thumbnails side by side), made once and not tuned: borderline shade differences
# (ms05-blue, ms06-blue, wh03-red, wt06-blue) stay out of the list. Magento sample-data labelling, not an image signal.
OWN_PHOTOS_DISAGREE = frozenset(
    {
        "mh13-blue",
        "mp05-blue",
        "mp07-blue",
        "msh01-blue",
        "msh09-blue",
        "wb02-blue",
        "wh01-green",
        "wh11-blue",
        "ws09-blue",
        "wsh12-green",
        "wt02-orange",
    }
)


def analysis(
    v: VariantImages, row: int, index: int, supplier: str, image_type: str, priority=None, probabilities=None
) -> ImageAnalysis:
    height, width = (int(x) for x in v.sizes[row])
    return ImageAnalysis(
        id=f"{supplier}-{row}",
        supplier=supplier,
        index=index,
        ok=True,
        width=width,
        height=height,
        type=image_type,
        # with the thumbnail and size, as the gateway has them: the duplicate rule's tone and framing rescues run
        hashes=ImageHashes(
            int(v.phash[row]), int(v.dhash_edge[row]), v.hsv_hist[row], thumb=v.thumbs[row], size=(width, height)
        ),
        supplier_priority=priority,
        type_probabilities=probabilities,
    )


@dataclasses.dataclass(frozen=True)
class Trial:
    source: str
    own: tuple[int, ...]  # rows of the product's own images
    planted: tuple[int, ...]  # rows of the other colourway's images, the first is its front


def trials(v: VariantListing, planted_views: int) -> Iterator[Trial]:
    """For every product and every other colourway of its family with a front: one trial."""
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, product in enumerate(v.products):
        rows_of[product].append(row)
    by_family: dict[str, list[str]] = defaultdict(list)
    for product, rows in rows_of.items():
        by_family[v.families[rows[0]]].append(product)
    for product, rows in sorted(rows_of.items()):
        for other in sorted(by_family[v.families[rows[0]]]):
            other_rows = rows_of[other]
            fronts = [r for r in other_rows if v.types[r] == "front"]
            if other == product or not fronts or any(same_photo(v.paths[fronts[0]], v.paths[r]) for r in rows):
                continue  # the "other colourway" is this product's own photograph filed twice (evaluation.dedup.audit)
            rest = [r for r in other_rows if r != fronts[0]]
            planted = (fronts[0], *rest[: planted_views - 1])
            if len(planted) == planted_views:
                yield Trial(v.source[rows[0]], tuple(rows), planted)


def image_type(v: VariantImages, row: int, types: str) -> str:
    """The manifest's type, or (`served`, catalog apparel only: the head is apparel's) the served type head's call."""
    if types == "manifest" or v.source[row] != "catalog":
        return v.types[row]
    return type_from_head(v.type_probs[row], load_catalog().get("apparel")).type


def type_probabilities(v: VariantImages, row: int, types: str) -> dict[str, float] | None:
    """The served apparel head's output by type (the hero margin reads it), None with the manifest's types."""
    if types == "manifest" or v.source[row] != "catalog":
        return None
    return {t: float(p) for t, p in zip(load_catalog().get("apparel").types, v.type_probs[row])}


def colour_name(v: VariantListing, row: int) -> str:
    """What a catalog's colour attribute would say of the product: its key past its family (catalog "mh01-gray":
    "gray"; "smartstore_converse-all-star-navy": "-navy"; "smartstore_rayban-wayfarer-blue-gray-classic-black":
    "-blue-gray-classic-black"; Thelia's "-c1", the base iPad's "", AbanteCart's and nopCommerce's numbers name no
    colour: their trials run as without one)."""
    return v.products[row][len(v.families[row]) :]


def product_colour(v: VariantListing, row: int) -> frozenset[str]:
    """The basic colour terms of colour_name, as the service reads a request's `colour` (contract.colours)."""
    return colour_terms(colour_name(v, row))


def run_trial(
    v: VariantImages, trial: Trial, category: Category, types: str, priorities: bool, named: bool = False
) -> tuple[bool, int]:
    """(hero is own, own images called inconsistent) for the trial's product page; `named`: the request names the
    product's colour (product_colour), as a catalog integration would."""
    images = []
    for rows, supplier, priority in ((trial.planted, OTHER, 2), (trial.own, OWN, 1)):
        for row in rows:
            kind, probs = image_type(v, row, types), type_probabilities(v, row, types)
            images.append(analysis(v, row, len(images), supplier, kind, priority if priorities else None, probs))
    colours = product_colour(v, trial.own[0]) if named else frozenset()
    selected, verdicts = select(images, category, colours=colours)
    inconsistent = sum(
        1 for verdict in verdicts if verdict.supplier == OWN and verdict.variant and not verdict.variant.consistent
    )
    return selected[0].startswith(OWN), inconsistent


def false_inconsistent(
    v: VariantImages, category: Category, types: str, products: set[tuple[int, ...]], named: bool = False
) -> dict:
    """How many of the products' own images the check calls inconsistent with nothing planted (all, and on the
    products whose own photographs agree in colour)."""
    own_images = flagged = agree_images = agree_flagged = 0
    for rows in sorted(products):
        images = [analysis(v, r, k, OWN, image_type(v, r, types)) for k, r in enumerate(rows)]
        colours = product_colour(v, rows[0]) if named else frozenset()
        verdicts = select(images, category, colours=colours)[1]
        flags = sum(1 for verdict in verdicts if verdict.variant and not verdict.variant.consistent)
        own_images, flagged = own_images + len(rows), flagged + flags
        if v.products[rows[0]] not in OWN_PHOTOS_DISAGREE:
            agree_images, agree_flagged = agree_images + len(rows), agree_flagged + flags
    return {
        "images": own_images,
        "flagged": flagged,
        "rate": round(flagged / max(own_images, 1), 4),
        "products": len(products),
        "own_photos_agree": {
            "images": agree_images,
            "flagged": agree_flagged,
            "rate": round(agree_flagged / max(agree_images, 1), 4),
        },
    }


def summarise(v: VariantImages, category: Category, sources: list[str], types: str) -> dict:
    off = dataclasses.replace(category, variant=None)
    out: dict[str, dict] = {}
    t = category.variant
    for source in sources:
        one = [tr for tr in trials(v, 1) if tr.source == source]
        enough = [tr for tr in one if len(tr.own) + 1 >= t.min_images]
        single = [tr for tr in one if len(tr.own) + 1 < t.min_images]
        two = [tr for tr in trials(v, 2) if tr.source == source and len(tr.own) >= 2]
        products = {tr.own for tr in one if len(tr.own) >= t.min_images}
        pairs = {tr.own for tr in one if len(tr.own) == 2}
        disagree = {tr for tr in enough if v.products[tr.own[0]] in OWN_PHOTOS_DISAGREE}

        def rate(trs, cat, priorities=False, named=False):
            hits = [run_trial(v, tr, cat, types, priorities, named)[0] for tr in trs]
            return {"hero_own": round(float(np.mean(hits)), 4) if hits else None, "trials": len(hits)}

        named_trials = [tr for tr in enough if product_colour(v, tr.own[0])]
        out[source] = {
            "before": rate(enough, off),
            "after": rate(enough, category),
            "after_own_photos_agree": rate([tr for tr in enough if tr not in disagree], category),
            "after_own_photos_disagree": rate([tr for tr in enough if tr in disagree], category),
            "two_planted_before": rate(two, off),
            "two_planted_after": rate(two, category),
            "one_own_image_no_priority": rate(single, category),
            "one_own_image_own_supplier_preferred": rate(single, category, priorities=True),
            "false_inconsistent": false_inconsistent(v, category, types, products),
            # the request names the product's colour (product_colour; trials whose key names none run as above)
            "colour_named": {
                "trials_with_a_name": len(named_trials),
                "after": rate(enough, category, named=True),
                "after_own_photos_agree": rate([tr for tr in enough if tr not in disagree], category, named=True),
                "after_own_photos_disagree": rate([tr for tr in enough if tr in disagree], category, named=True),
                "two_planted_after": rate(two, category, named=True),
                "one_own_image_no_priority": rate(single, category, named=True),
                "false_inconsistent": false_inconsistent(v, category, types, products, named=True),
                # products with 2 own images: with a name the check runs there too (fewer than min_images)
                "false_inconsistent_two_images": false_inconsistent(v, category, types, pairs, named=True),
            },
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--vision", type=Path, required=True, help="the served vision model file (<repo>/analyze/1/vision.onnx)"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgsel-variant-cache"))
    parser.add_argument("--types", choices=("served", "manifest"), default="served")
    parser.add_argument("--sweep", action="store_true", help="also sweep max_distance (calibration, catalog)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    v = load_variant_images(args.vision, args.cache)
    catalog = load_catalog()
    results = {"configured": {}}
    for name, source in (("apparel", "catalog"), ("default", "products")):
        category = dataclasses.replace(catalog.get(name), min_side=0)  # ordering is measured, not resolution rules
        results["configured"][source] = {
            "category": name,
            "thresholds": dataclasses.asdict(category.variant),
            **summarise(v, category, [source], args.types)[source],
        }
    if args.sweep:
        apparel = dataclasses.replace(catalog.get("apparel"), min_side=0)
        results["sweep"] = {}
        for threshold in (0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
            swept = dataclasses.replace(apparel, variant=VariantThresholds(threshold, apparel.variant.min_images))
            row = summarise(v, swept, ["catalog"], args.types)["catalog"]
            results["sweep"][threshold] = {
                "hero_own": row["after"]["hero_own"],
                "hero_own_photos_agree": row["after_own_photos_agree"]["hero_own"],
                "two_planted": row["two_planted_after"]["hero_own"],
                "false_inconsistent": row["false_inconsistent"]["rate"],
                "false_inconsistent_own_photos_agree": row["false_inconsistent"]["own_photos_agree"]["rate"],
            }
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
