"""Command line: `python -m evaluation.dedup generate|evaluate|audit|tune ...` (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import evaluation.dedup
from contract.categories_file import CATEGORIES_FILE_ENV, DEFAULT_CATEGORIES_FILE
from evaluation.dedup.audit import audit
from evaluation.dedup.evaluate import evaluate
from evaluation.dedup.generate import generate
from evaluation.dedup.metrics import DEFAULT_MIN_PRECISION, DEFAULT_RECALL_TOLERANCE, Rule
from evaluation.dedup.tune import tune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.dedup", description=evaluation.dedup.__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write labelled pairs (CSV + images) from a folder of images")
    gen.add_argument("--source", type=Path, required=True, help="folder of images (searched recursively)")
    gen.add_argument(
        "--manifest",
        type=Path,
        help="CSV file,style,category,color,view (or the grocery dataset's classes.csv); default: SOURCE/manifest.csv "
        "if present, else every image is its own product",
    )
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--pairs", type=int, help="total pairs, half duplicates (default: 6 per image, at most 4000)")
    gen.add_argument("--category", default="default", help="gateway category the pairs belong to (for tune)")
    gen.add_argument("--name", help="short name of the source in reports (default: the folder name)")

    ev = commands.add_parser("evaluate", help="precision/recall/F1 and throughput of ours and the baselines")
    ev.add_argument("--pairs", type=Path, nargs="+", required=True, help="one or more pairs directories")
    ev.add_argument("--min-precision", type=float, default=DEFAULT_MIN_PRECISION)
    ev.add_argument("--recall-tolerance", type=float, default=DEFAULT_RECALL_TOLERANCE, help="0: strict max recall")
    ev.add_argument("--folds", type=int, default=5)
    ev.add_argument("--no-cnn", action="store_true", help="skip the CNN cosine baseline (needs torch)")
    ev.add_argument("--ours-only", action="store_true", help="only our ensemble (e.g. thresholds on held-out pairs)")
    ev.add_argument("--json", type=Path, help="also write the results here (default: PAIRS[0]/evaluation.json)")
    ev.add_argument(
        "--exclude-same-photo",
        action="store_true",
        help="leave out the distinct-labelled pairs that are one photograph (the `audit` command's same_photo.json)",
    )

    au = commands.add_parser("audit", help="find distinct-labelled pairs whose two originals are one photograph")
    au.add_argument("--pairs", type=Path, nargs="+", required=True)

    tu = commands.add_parser("tune", help="precision-first joint sweep of the three dedup thresholds")
    tu.add_argument("--pairs", type=Path, nargs="+", required=True)
    tu.add_argument("--category", help="only pairs of this category; --write then sets [categories.NAME.dedup]")
    tu.add_argument("--min-precision", type=float, default=DEFAULT_MIN_PRECISION)
    tu.add_argument(
        "--recall-tolerance",
        type=float,
        default=DEFAULT_RECALL_TOLERANCE,
        help="recalls within this of the best are ties, resolved to the stricter thresholds (0: strict max recall)",
    )
    tu.add_argument("--folds", type=int, default=5)
    tu.add_argument("--write", action="store_true", help="store the thresholds in the categories file")
    tu.add_argument("--exclude-same-photo", action="store_true", help="as for evaluate")
    tu.add_argument(
        "--categories-file",
        type=Path,
        default=Path(os.environ.get(CATEGORIES_FILE_ENV) or DEFAULT_CATEGORIES_FILE),
        help="the file the gateway reads ($IMGSEL_CATEGORIES_FILE or contract/categories.toml)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        meta = generate(
            args.source,
            args.out,
            manifest=args.manifest,
            seed=args.seed,
            n_pairs=args.pairs,
            category=args.category,
            source_name=args.name,
        )
        print(json.dumps(meta, indent=2))
    elif args.command == "evaluate":
        rule = Rule(args.min_precision, args.recall_tolerance)
        with_cnn = not (args.no_cnn or args.ours_only)
        result = evaluate(
            args.pairs,
            rule,
            with_cnn,
            args.folds,
            baselines=not args.ours_only,
            exclude_same_photo=args.exclude_same_photo,
        )
        out = args.json or args.pairs[0] / "evaluation.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {out}", file=sys.stderr)
    elif args.command == "audit":
        audit(args.pairs)
    else:
        rule = Rule(args.min_precision, args.recall_tolerance)
        tune(args.pairs, args.category, rule, args.folds, args.write, args.categories_file, args.exclude_same_photo)
    return 0
