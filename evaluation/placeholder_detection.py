"""Placeholder detection on development data: library match, category vote, learned head, and their combination.

    python -m evaluation.placeholder_detection [--variants 40] [--unseen 300] [--in-store 8] [--cache DIR]
        [--vision <cpu repository>/analyze/1/vision.onnx]

Data (evaluation.placeholder_data; ../shared/data): the real placeholders as the library, `--variants` seeded
transforms of each (known-variant recall), `--unseen` rendered placeholders with captions the learned head never saw
(unseen recall), and real product photos: every catalog photo, every grocery iconic image and `--in-store` grocery
in-store phone photos per product that the quality head was not trained on (false-positive rate). Every image goes
through the production path (evaluation.placeholder_mechanisms): the torch float32 backbone and `--head`, cached under
`--cache` by content; or, with `--vision`, the served vision model file (e.g. the cpu profile's int8 model), its own
embedding and placeholder score, not cached.

The vote: each query meets K exemplars of its category (catalog apparel / catalog gear / grocery), drawn from the
real photos of other products (other style / other grocery product), as the gateway's store of recently accepted
images would give it. Placeholder queries get a category at random. Rule parameters and the combination are chosen on
the calibration half (split by group: style, product, caption; known variants by index) and reported on the test half.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from evaluation.placeholder_data import CATEGORIES, DATA, assemble
from evaluation.placeholder_mechanisms import (
    HEAD_ALONE,
    Signals,
    analyse,
    choose_combination,
    pick_vote_threshold,
    rate,
    similarity_per_category,
    vote_per_category,
)
from gateway.decisions.placeholders import LibraryRule


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=40)
    parser.add_argument("--unseen", type=int, default=300)
    parser.add_argument("--in-store", type=int, default=8, help="grocery in-store photos per product")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exemplars", type=int, default=11, help="K: exemplars per vote")
    parser.add_argument("--min-votes", type=int, default=5, help="'unlike' votes that call a placeholder")
    parser.add_argument("--max-distance", type=int, default=LibraryRule.max_distance, help="library pHash distance")
    parser.add_argument(
        "--alone-distance",
        type=int,
        default=LibraryRule.alone_distance,
        help="a library match this near stands without the head's score (gateway.decisions.placeholders.LibraryRule)",
    )
    parser.add_argument("--max-fpr", type=float, default=0.005, help="false-positive budget on calibration photos")
    parser.add_argument(
        "--vote-fpr", type=float, default=0.05, help="the vote's own false-positive budget on calibration photos"
    )
    parser.add_argument("--head", type=Path, default=HEADS_DIR / "quality.onnx")
    parser.add_argument(
        "--vision",
        type=Path,
        help="a vision ONNX model (e.g. <cpu repository>/analyze/1/vision.onnx): embeddings and placeholder scores "
        "from it instead of the torch backbone and --head (not cached)",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgsel-phvote"))
    parser.add_argument("--json", type=Path, help="write every number here too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = sorted((DATA / "placeholders").glob("*.png"))
    if not known:
        print(f"no placeholders under {DATA}: nothing to evaluate")
        return 0
    items = assemble(known, args.variants, args.unseen, args.in_store, args.seed)
    started = time.monotonic()
    analysed = analyse(items, args.cache, args.vision)
    print(f"analysed {len(items)} images in {time.monotonic() - started:.0f} s")
    if not analysed["valid"].all():
        bad = [items[i].key for i in np.flatnonzero(~analysed["valid"])]
        raise SystemExit(f"undecodable: {bad[:5]}")
    library_rule = LibraryRule(args.max_distance, args.alone_distance)  # the served head_min
    signals = Signals.measure(items, analysed, args.head, library_rule, args.exemplars, args.min_votes, args.seed)

    report: dict = {"items": {k: int((signals.kinds == k).sum()) for k in ("library", "known", "unseen", "photo")}}
    print(json.dumps(report["items"]))
    s_alone = pick_vote_threshold(signals.kth_lowest, signals.calibration & ~signals.truth, args.max_fpr)
    print(f"vote-alone threshold (FPR <= {args.max_fpr} on calibration photos): similarity {s_alone:.4f}")
    s_comb, h_lo = choose_combination(signals, args.max_fpr, args.vote_fpr)
    print(
        f"combined rule chosen on calibration: library OR head >= {HEAD_ALONE} OR (vote at similarity < {s_comb} "
        f"AND head >= {h_lo})"
    )
    per_category = similarity_per_category(signals, args.max_fpr, args.vote_fpr, h_lo)
    print(
        f"gated vote similarity chosen per category (the same rule on each category's calibration rows): {per_category}"
    )
    report["rule"] = {
        "similarity": s_comb,
        "similarity_per_category": per_category,
        "head_with_vote": h_lo,
        "head_alone": HEAD_ALONE,
        "vote_alone_similarity": s_alone,
        "exemplars": args.exemplars,
        "min_votes": args.min_votes,
        "max_distance": args.max_distance,
        "alone_distance": args.alone_distance,
    }
    report["results"] = print_results(signals, rules(signals, s_alone, s_comb, h_lo, per_category))
    print_similarity_spread(signals)
    report["vote_per_category"] = print_vote_per_category(signals, args.max_fpr)
    if signals.head is not None:
        print_head_scores(signals)
        head_model = args.vision or args.head
        report["head_model_sha256"] = hashlib.sha256(head_model.read_bytes()).hexdigest()[:16]
        print(f"head model {head_model} sha256 {report['head_model_sha256']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


def rules(
    signals: Signals, s_alone: float, s_comb: float, h_lo: float, per_category: dict[str, float]
) -> dict[str, np.ndarray]:
    """Flags of every rule compared in the table: each mechanism alone, pairs, the vote branch and the chosen rule,
    and both again with the gated vote's similarity of each category in `per_category` (the pooled one elsewhere)."""
    head, library = signals.head, signals.library_fires
    vote_alone = signals.kth_lowest < s_alone
    table = {"library only": library, "vote only": vote_alone}
    if head is not None:
        table["head only (>= 0.5)"] = head >= HEAD_ALONE
        table["library OR head"] = library | (head >= HEAD_ALONE)
    table["library OR vote"] = library | vote_alone
    head_gate = (head >= h_lo) if head is not None else True
    vote_branch = (signals.kth_lowest < s_comb) & head_gate
    table[f"vote branch (similarity < {s_comb}, head >= {h_lo})"] = vote_branch
    head_alone = (head >= HEAD_ALONE) if head is not None else False
    table["combined (chosen)"] = library | head_alone | vote_branch
    similarity = np.array([per_category.get(cat, s_comb) for cat in signals.categories])
    category_branch = (signals.kth_lowest < similarity) & head_gate
    table[f"vote branch, similarity per category {per_category}"] = category_branch
    table["combined, similarity per category"] = library | head_alone | category_branch
    return table


def print_results(signals: Signals, table: dict[str, np.ndarray]) -> dict:
    """Recall and false-positive rates of every rule on both halves, as markdown tables; returns them."""
    results: dict = {}
    kinds, truth = signals.kinds, signals.truth
    for part, mask in (("calibration", signals.calibration), ("test", signals.test)):
        print(f"\n{part} half")
        print("| rule | known-variant recall | unseen recall | FPR real photos | FPR photos unseen by the head |")
        print("| --- | --- | --- | --- | --- |")
        for name, flags in table.items():
            k = rate(flags, mask & (kinds == "known"))
            u = rate(flags, mask & (kinds == "unseen"))
            f = rate(flags, mask & ~truth)
            fu = rate(flags, mask & ~truth & ~signals.head_seen)
            results.setdefault(part, {})[name] = {"known": k, "unseen": u, "fpr": f, "fpr_head_unseen": fu}
            print(
                f"| {name} | {k[0]:.4f} ({k[1]}/{k[2]}) | {u[0]:.4f} ({u[1]}/{u[2]}) | {f[0]:.4f} ({f[1]}/{f[2]}) "
                f"| {fu[0]:.4f} ({fu[1]}/{fu[2]}) |"
            )
    return results


def print_similarity_spread(signals: Signals) -> None:
    """Where the vote stands: the order statistic by kind and category (test half)."""
    print("\nmin_votes-th lowest exemplar similarity, median [5th-95th percentile], test half:")
    for kind in ("known", "unseen", "photo"):
        for cat in CATEGORIES:
            m = signals.test & (signals.kinds == kind) & (signals.categories == cat)
            if m.any():
                v = signals.kth_lowest[m]
                low, high = np.percentile(v, 5), np.percentile(v, 95)
                print(f"  {kind:7s} {cat:8s} n={int(m.sum()):4d} {np.median(v):.3f} [{low:.3f}-{high:.3f}]")


def print_vote_per_category(signals: Signals, max_fpr: float) -> dict:
    print("\nvote alone, per-category threshold (FPR <= --max-fpr on the category's calibration photos), test half:")
    per_category = vote_per_category(signals, max_fpr)
    for cat, row in per_category.items():
        r, f = row["recall"], row["fpr"]
        print(
            f"  {cat:8s} similarity < {row['similarity']:.3f}: placeholder recall {r[0]:.3f} ({r[1]}/{r[2]}), "
            f"FPR {f[0]:.4f} ({f[1]}/{f[2]})"
        )
    return per_category


def print_head_scores(signals: Signals) -> None:
    for part, mask in (("calibration", signals.calibration), ("test", signals.test)):
        neg = signals.head[mask & ~signals.truth]
        pos = signals.head[mask & signals.truth]
        print(
            f"head score, {part}: photos max {neg.max():.4f}, 99.5th pct {np.percentile(neg, 99.5):.4f}; "
            f"placeholders min {pos.min():.4f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
