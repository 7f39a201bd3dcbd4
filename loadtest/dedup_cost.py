"""What one product's duplicate decision costs the gateway, with the framing rescue on and off (issue #13).

`make bench`'s products go through the DALI preprocessing once (their THUMB outputs, as Triton returns them); then,
per product, `gateway.hashing.duplicate_matrix` over all its pairs as one category (apparel's thresholds: the worst
case, where every pair may be compared again), best of `--repeats` runs, fresh hashes each run (the framing rescue's
per-image caches live as long as one request's). It also counts the framing rescue's steps per product: pairs
searched, windows refined, windows hashed, pairs it accepts.

    python -m loadtest.dedup_cost [--images 64] [--products 32] [--repeats 5] [--json F]

The defaults are `loadtest.bench`'s: 64 photos in 32 products of 8, so product p repeats product p mod 8.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from contract.categories_file import load_catalog
from contract.tensors import THUMB
from gateway.hashing import HashVectors, compute_hashes, duplicate_matrix, framing, rule
from loadtest.products import IMAGES_PER_PRODUCT, SIDE, benchmark_images


def thumbnails(files: list[bytes]) -> list[np.ndarray]:
    from preprocessing.runner import PreprocessRunner

    runner = PreprocessRunner(max_batch=64)
    thumbs: list[np.ndarray] = []
    for start in range(0, len(files), 64):
        batch = [np.frombuffer(f, np.uint8) for f in files[start : start + 64]]
        thumbs += [np.array(t) for t in runner.run(batch)[THUMB.name]]
    return thumbs


class StepCounter:
    """Counts the framing rescue's steps per duplicate_matrix call: pairs searched, searches refined past the coarse
    level, windows found (whose hashes are then taken). Wraps the functions while in use."""

    def __enter__(self) -> StepCounter:
        self.counts = {"searched": 0, "refined": 0, "windows": 0}
        self._search, self._refine = rule.best_windows, framing._refine

        def search(pairs, *args, **kwargs):
            self.counts["searched"] += len(pairs)
            found = self._search(pairs, *args, **kwargs)
            self.counts["windows"] += sum(window is not None for window in found)
            return found

        def refine(*args, **kwargs):
            self.counts["refined"] += 1
            return self._refine(*args, **kwargs)

        rule.best_windows, framing._refine = search, refine
        return self

    def __exit__(self, *exc) -> None:
        rule.best_windows, framing._refine = self._search, self._refine


def product_costs(thumbs: list[np.ndarray], products: int, repeats: int) -> list[dict]:
    dedup = load_catalog().get("apparel").dedup
    off = replace(dedup, framing_min_share=0.0)
    rows = []
    for p in range(products):
        indices = [(p * IMAGES_PER_PRODUCT + k) % len(thumbs) for k in range(IMAGES_PER_PRODUCT)]
        picks = [thumbs[i] for i in indices]
        row: dict = {"product": p, "images": indices}
        for label, thresholds in (("on", dedup), ("off", off)):
            best = float("inf")
            for _ in range(repeats):
                vectors = HashVectors.from_hashes([compute_hashes(t, (SIDE, SIDE)) for t in picks])
                start = time.perf_counter()
                matrix = duplicate_matrix(vectors, thresholds)
                best = min(best, time.perf_counter() - start)
            row[f"{label}_ms"] = best * 1e3
            row[f"{label}_duplicate_pairs"] = int(np.triu(matrix, 1).sum())
        vectors = HashVectors.from_hashes([compute_hashes(t, (SIDE, SIDE)) for t in picks])
        with StepCounter() as steps:
            duplicate_matrix(vectors, dedup)
        row.update(steps.counts)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--products", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the per-product rows here")
    args = parser.parse_args()
    files, note = benchmark_images(args.images)
    rows = product_costs(thumbnails(files), args.products, args.repeats)
    extra = np.array([r["on_ms"] - r["off_ms"] for r in rows])
    print(f"{len(rows)} products of {IMAGES_PER_PRODUCT} ({note}); wall ms per product, best of {args.repeats}")
    print("| product | rescue off | rescue on | pairs searched | refined | windows hashed | duplicate pairs off / on |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    distinct = {tuple(r["images"]): r for r in rows}.values()  # products of the same photos once
    for r in distinct:
        print(
            f"| {r['product']} | {r['off_ms']:.2f} | {r['on_ms']:.2f} | {r['searched']} | {r['refined']} | "
            f"{r['windows']} | {r['off_duplicate_pairs']} / {r['on_duplicate_pairs']} |"
        )
    print(
        f"the rescue's extra ms per product over all {len(rows)}: mean {extra.mean():.2f}, median "
        f"{np.median(extra):.2f}, p90 {np.percentile(extra, 90):.2f}, max {extra.max():.2f}"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"data": note, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
