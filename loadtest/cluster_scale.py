"""Clustering at scale: one product of 200 images through gateway.decisions, and a catalog slice of 100k images
through gateway.catalog_dedup (candidate generation, vectorised verification, clustering), with recall measured
against brute force on a smaller slice.

    python -m loadtest.cluster_scale [--images 100000] [--recall-images 10000] [--radius 0 1 2 3] [--json FILE]

Writes the JSON to loadtest/results/cluster-scale-<time>.json unless --json names another file.

Thresholds: contract.categories_file.load_catalog().default.dedup. Prints a markdown report (time, peak memory) for
BENCHMARKS.md.

The hash vectors are synthetic (loadtest.synthetic_hashes: shaped after the studio photos of ../shared/data/catalog
as the production hashes see them, with planted duplicates and colourway look-alikes).

The exact probe radius is `radius_for(phash_max_distance, bands)` (3 for the tuned pHash threshold, 12 or 14, and 4
bands); smaller radii trade recall for speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from contract.categories_file import load_catalog
from gateway.catalog_dedup import PairStats, brute_force_pairs, cluster, duplicate_pairs
from gateway.hashing import (
    HASH_BITS,
    ImageHashes,
    guaranteed_distance,
    hamming,
    miss_probability,
    radius_for,
    rule_closeness,
)
from loadtest.synthetic_hashes import synthetic_catalog

RESULTS = Path(__file__).resolve().parent / "results"


def _timed(function, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process, peak traced numpy/Python allocation in bytes).

    CPU seconds are the steadier number on a shared machine: the work is single-threaded numpy."""
    tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, elapsed, cpu, peak


def product_benchmark(images: int, repeats: int = 20) -> dict:
    """gateway.decisions.select and cluster_duplicates on one product of `images` images with planted duplicates,
    in the easy case (mixed styles) and the worst case (every pair passes both hash tests, so every pair needs
    its chi-square)."""
    from gateway.decisions.analysis import ImageAnalysis
    from gateway.decisions.duplicates import cluster_duplicates
    from gateway.decisions.selection import select

    category = load_catalog().default
    results = {}
    for case in ("mixed", "all_hashes_alike"):
        synthetic = synthetic_catalog(images, seed=7)
        v = synthetic.vectors
        phash, dhash = v.phash, v.dhash_edge
        if case == "all_hashes_alike":
            phash, dhash = np.full_like(phash, phash[0]), np.full_like(dhash, dhash[0])
        rng = np.random.default_rng(3)
        analyses = [
            ImageAnalysis(
                id=f"img-{k}",
                supplier=f"S{k % 4}",
                index=k,
                ok=True,
                width=int(rng.integers(600, 2000)),
                height=int(rng.integers(600, 2000)),
                scores={"blur": float(rng.uniform(0, 0.45)), "small_object": float(rng.uniform(0, 0.3))},
                hashes=ImageHashes(int(phash[k]), int(dhash[k]), v.hsv_hist[k]),
            )
            for k in range(images)
        ]
        timings = {}
        for name, function, arguments in (
            ("select_ms", select, (analyses, category, 100)),
            ("cluster_duplicates_ms", cluster_duplicates, (analyses, category.dedup)),
        ):
            samples, cpu_samples = [], []
            for _ in range(repeats):
                started, cpu_started = time.perf_counter(), time.process_time()
                function(*arguments)
                samples.append(time.perf_counter() - started)
                cpu_samples.append(time.process_time() - cpu_started)
            timings[name] = {
                "median": 1000 * float(np.median(samples)),
                "max": 1000 * max(samples),
                "cpu_median": 1000 * float(np.median(cpu_samples)),
            }
        timings["clusters"] = len(cluster_duplicates(analyses, category.dedup))
        results[case] = timings
    return results


def recall_benchmark(images: int, radii: list[int], bands: int, seed: int) -> dict:
    t = load_catalog().default.dedup
    v = synthetic_catalog(images, seed=seed).vectors
    (bi, bj), brute_s, brute_cpu, brute_peak = _timed(brute_force_pairs, v, t)
    distance = hamming(v.phash[bi], v.phash[bj]).astype(int)
    out = {
        "images": images,
        "brute_force_s": brute_s,
        "brute_force_cpu_s": brute_cpu,
        "brute_force_peak_mb": brute_peak / 2**20,
        "pairs": len(bi),
    }
    brute = bi * images + bj
    for radius in radii:
        li, lj = duplicate_pairs(v, t, bands=bands, radius=radius)
        found = np.isin(brute, li * images + lj)
        by_distance = {}
        for lo, hi in ((0, guaranteed_distance(bands, radius)), (guaranteed_distance(bands, radius) + 1, HASH_BITS)):
            rows = (distance >= lo) & (distance <= hi)
            if rows.any():
                by_distance[f"{lo}-{min(hi, t.phash_max_distance)}"] = {
                    "pairs": int(rows.sum()),
                    "recall": float(found[rows].mean()),
                }
        out[f"radius_{radius}"] = {
            "recall": float(found.mean()) if len(found) else 1.0,
            "found_only_true_pairs": bool(np.isin(li * images + lj, brute).all()),
            "by_phash_distance": by_distance,
        }
    return out


def scale_benchmark(images: int, radii: list[int], bands: int, seed: int) -> dict:
    t = load_catalog().default.dedup
    started = time.perf_counter()
    synthetic = synthetic_catalog(images, seed=seed)
    out = {"images": images, "generate_s": time.perf_counter() - started, "planted_groups": synthetic.planted_groups}
    v = synthetic.vectors
    out["hash_vectors_mb"] = (v.phash.nbytes + v.dhash_edge.nbytes + v.hsv_hist.nbytes) / 2**20
    found: dict[int, np.ndarray] = {}
    for radius in radii:
        stats = PairStats()
        (i, j), pairs_s, pairs_cpu, pairs_peak = _timed(duplicate_pairs, v, t, bands=bands, radius=radius, stats=stats)
        leader, leader_s, leader_cpu, leader_peak = _timed(
            lambda i=i, j=j: cluster(images, i, j, synthetic.rank, "leader", rule_closeness(v, i, j, t))
        )
        components, comp_s, _, _ = _timed(cluster, images, i, j, synthetic.rank, "components")
        found[radius] = i * images + j
        out[f"radius_{radius}"] = {
            "guaranteed_distance": guaranteed_distance(bands, radius),
            "candidates": stats.candidates,
            "duplicate_pairs": stats.pairs,
            "pairs_s": pairs_s,
            "pairs_cpu_s": pairs_cpu,
            "pairs_peak_mb": pairs_peak / 2**20,
            "leader_s": leader_s,
            "leader_cpu_s": leader_cpu,
            "leader_peak_mb": leader_peak / 2**20,
            "leader_clusters": int(len(np.unique(leader))),
            "components_s": comp_s,
            "components_clusters": int(len(np.unique(components))),
            "total_s": pairs_s + leader_s,
            "total_cpu_s": pairs_cpu + leader_cpu,
            # Pairs made from one original (planted copies) vs pairs of different synthetic products that pass the
            # three thresholds anyway.
            "planted_pairs": int((synthetic.origin[i] == synthetic.origin[j]).sum()),
        }
    exact = radius_for(t.phash_max_distance, bands)
    if exact in found:  # the exact radius finds every pair: recall of the others at full scale
        for radius in radii:
            out[f"radius_{radius}"]["recall_vs_exact"] = float(np.isin(found[exact], found[radius]).mean())
    return out


@dataclass
class Machine:
    cpus: int
    python: str
    numpy: str
    processor: str


def print_product(report: dict, images: int) -> None:
    print(f"\n## One product, {images} images (gateway.decisions)\n")
    print("| case | select ms: median wall / max wall / median CPU | cluster_duplicates ms: same | clusters |")
    print("| --- | --- | --- | --- |")
    for case, r in report.items():
        s, c = r["select_ms"], r["cluster_duplicates_ms"]
        print(
            f"| {case} | {s['median']:.1f} / {s['max']:.1f} / {s['cpu_median']:.1f} "
            f"| {c['median']:.1f} / {c['max']:.1f} / {c['cpu_median']:.1f} | {r['clusters']} |"
        )


def print_recall(r: dict, radii: list[int], bands: int) -> None:
    print(f"\n## Recall vs brute force, {r['images']} images ({r['pairs']} duplicate pairs)\n")
    print(
        f"brute force: {r['brute_force_s']:.2f} s wall, {r['brute_force_cpu_s']:.2f} s CPU, "
        f"peak {r['brute_force_peak_mb']:.0f} MB (numpy allocations)\n"
    )
    print("| radius | guaranteed pHash distance | recall | recall by pHash distance |")
    print("| --- | --- | --- | --- |")
    for radius in radii:
        rr = r[f"radius_{radius}"]
        parts = ", ".join(f"{k}: {x['recall']:.3f} of {x['pairs']}" for k, x in rr["by_phash_distance"].items())
        print(f"| {radius} | <= {guaranteed_distance(bands, radius)} | {rr['recall']:.4f} | {parts} |")


def print_scale(s: dict, radii: list[int]) -> None:
    print(f"\n## Catalog slice, {s['images']} images ({s['hash_vectors_mb']:.0f} MB of hash vectors)\n")
    print(
        "| radius | candidates | duplicate pairs (planted) | recall | pairs s wall (CPU) | peak MB "
        "| leader s wall (CPU) | leader clusters | components s | component clusters |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for radius in radii:
        x = s[f"radius_{radius}"]
        print(
            f"| {radius} | {x['candidates']:,} | {x['duplicate_pairs']:,} ({x['planted_pairs']:,}) "
            f"| {x.get('recall_vs_exact', float('nan')):.3f} "
            f"| {x['pairs_s']:.2f} ({x['pairs_cpu_s']:.2f}) | {x['pairs_peak_mb']:.0f} "
            f"| {x['leader_s']:.2f} ({x['leader_cpu_s']:.2f}) | {x['leader_clusters']:,} "
            f"| {x['components_s']:.2f} | {x['components_clusters']:,} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="catalog slice size")
    parser.add_argument("--recall-images", type=int, default=10_000, help="slice compared with brute force (0: skip)")
    parser.add_argument("--product-images", type=int, default=200, help="images of one product (0: skip)")
    parser.add_argument("--radius", type=int, nargs="+", default=[0, 1, 2, 3], help="probe radii to run")
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="results file (default: loadtest/results/cluster-scale-<time>.json)")
    args = parser.parse_args(argv)

    t = load_catalog().default.dedup
    machine = Machine(os.cpu_count() or 0, platform.python_version(), np.__version__, platform.processor())
    report: dict = {"machine": asdict(machine), "thresholds": asdict(t), "bands": args.bands}
    print(f"thresholds (default category): {asdict(t)}; {machine.cpus} CPUs, numpy {machine.numpy}")
    print("miss probability of plain banding (radius 0) by pHash distance, bits spread uniformly:")
    print("  " + ", ".join(f"d={d}: {miss_probability(d, args.bands, 0):.2f}" for d in range(2, 13, 2)))
    if args.product_images:
        report["product"] = product_benchmark(args.product_images)
        print_product(report["product"], args.product_images)
    if args.recall_images:
        report["recall"] = recall_benchmark(args.recall_images, args.radius, args.bands, args.seed)
        print_recall(report["recall"], args.radius, args.bands)
    if args.images:
        report["scale"] = scale_benchmark(args.images, args.radius, args.bands, args.seed)
        print_scale(report["scale"], args.radius)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["max_rss_mb"] = rss
    print(f"\nprocess peak RSS: {rss:.0f} MB")
    out = args.json or RESULTS / f"cluster-scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
