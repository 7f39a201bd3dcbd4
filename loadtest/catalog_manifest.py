"""A backfill manifest of ../shared/data/catalog: its photos grouped into products by `style` (the photos of one
style are one product's images from its suppliers), the manifest's category left out (predicted), or `--category`.

    python -m loadtest.catalog_manifest OUT.jsonl [--min-images 2]

For `python -m backfill plan|run` on real photos (BENCHMARKS.md "Catalog backfill")."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from loadtest.products import CATALOG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-images", type=int, default=2)
    parser.add_argument("--category", default=None)
    args = parser.parse_args(argv)
    manifest = CATALOG / "manifest.csv"
    if not manifest.is_file():
        print(f"{manifest} absent: no catalog to make a manifest of", file=sys.stderr)
        return 2
    styles: dict[str, list[str]] = {}
    with open(manifest, newline="") as rows:
        for row in csv.DictReader(rows):
            styles.setdefault(row["style"], []).append(str(CATALOG / row["file"]))
    products = [(style, files) for style, files in styles.items() if len(files) >= args.min_images]
    with open(args.out, "w") as out:
        for style, files in products:
            out.write(json.dumps({"product_id": style, "category": args.category, "images": files}) + "\n")
    print(f"{len(products)} products, {sum(len(f) for _, f in products)} images -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
