"""Clustering at scale: one product of 200 images through gateway.decisions, and a catalog slice of 100k images
through gateway.catalog_dedup (candidate generation, vectorised verification, clustering), with recall measured
against brute force on a smaller slice.

    python -m loadtest.cluster_scale [--images 100000] [--recall-images 10000] [--radius 0 1 2 3] [--json FILE]

Writes the JSON to loadtest/results/cluster-scale-<time>.json unless --json names another file.

Thresholds: contract.categories_file.load_catalog().default.dedup. Prints a markdown report (time, peak memory) for
BENCHMARKS.md.

The hash vectors are synthetic (`synthetic_catalog`), shaped after the 400 studio photos of ../shared/data/catalog
as the production hashes see them (content-box pHash and edge dHash of the 128 px thumbnail Triton returns,
foreground colour histogram; gateway.hashing), which this script does not need or read:

- pHash: balanced like a real one (the DC bit always set, 31 of the other 63 set: pHash thresholds at the median,
  so real distances are even). Images share "compositions" (centred product on white, folded, worn...): bits are
  the top 31 of (per-bit global bias + composition profile + per-image noise). The scales were tuned so random
  pairs behave like the real catalog's pairs of different styles (measured: mean distance 30, 0.27% within 10 bits,
  0.52% within 14, 0.30% sharing a 16-bit band exactly).
- edge dHash: the same construction without balancing (real mean ~30 ones, random-pair mean distance ~28).
- colour histogram (HSV_HIST_BINS bins, foreground only): see `_histograms`.
- Styles come in 1-4 colourways (same pose: pHash within 0-6 bits, different colour: far in chi-square): the hard
  negatives the histogram must reject.
- Planted duplicates (a share of the images, default 15%, groups of 2-4): copies of an original made by
  re-encoding/resizing, brightness change or a 1-4% crop, with pHash/dHash distances drawn from the distributions
  measured on real catalog pairs for exactly those edits (below) and a histogram perturbed to a chi-square of about
  COPY_CHI2_MEDIAN.

The exact probe radius is `radius_for(phash_max_distance, bands)` (3 for the tuned pHash threshold 14 and 4 bands);
smaller radii trade recall for speed.
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
from gateway.catalog_dedup import (
    HashVectors,
    PairStats,
    brute_force_pairs,
    cluster,
    duplicate_pairs,
    guaranteed_distance,
    miss_probability,
    popcount64,
    radius_for,
)
from gateway.hashing import HSV_HIST_BINS, HUE_BINS, SAT_BINS, TONE_BINS

# Distance histograms {distance: count} of (original, edited) pairs, measured with the production hashes (DALI
# preprocess -> gateway.hashing.compute_hashes) on the labelled duplicate pairs of ../shared/data/catalog made by
# `python -m evaluation.dedup_pairs generate` (seed 0), single-edit pairs only: `reencode` = its resize and jpeg kinds
# (100 + 103 pairs), `brightness` (98), `crop` (91: 1-4% off the borders).
EDIT_WEIGHTS = {"reencode": 0.4, "brightness": 0.3, "crop": 0.3}
PHASH_EDIT_DISTANCES = {
    "reencode": {0: 165, 2: 29, 4: 3, 6: 4, 8: 1, 10: 1, 22: 1, 26: 1},
    "brightness": {0: 27, 2: 32, 4: 16, 6: 8, 8: 2, 10: 1, 12: 3, 14: 4, 16: 1, 18: 1, 26: 1, 28: 2},
    "crop": {0: 12, 2: 21, 4: 20, 6: 15, 8: 9, 10: 5, 12: 5, 14: 2, 16: 1, 26: 1},
}
DHASH_EDIT_DISTANCES = {
    "reencode": {0: 119, 1: 51, 2: 19, 3: 3, 4: 4, 5: 3, 6: 2, 9: 1, 10: 1, 18: 1, 20: 1},
    "brightness": {0: 9, 1: 18, 2: 24, 3: 16, 4: 8, 5: 6, 6: 4, 7: 6, 12: 1, 16: 1, 17: 1, 20: 1, 24: 1, 26: 1, 34: 1},
    "crop": {0: 8, 1: 10, 2: 16, 3: 11, 4: 11, 5: 10, 6: 5, 7: 7, 8: 8, 9: 1, 11: 1, 13: 1, 14: 1, 30: 1},
}
# Colour histogram of the foreground (gateway.hashing.colour_histogram): achromatic tone bins, then hue x saturation.
HIST_BINS = HSV_HIST_BINS
# Median chi-square between an original and an edited copy on the same pairs: resize/jpeg 0.0001-0.0003,
# crop 0.001, brightness 0.002.
COPY_CHI2_MEDIAN = 0.001
# Shared photo set-ups; fixed, not growing with n: the share of look-alike pairs stays constant (conservative).
COMPOSITIONS = 40
BITS = 64
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Synthetic:
    vectors: HashVectors
    rank: np.ndarray  # representative order (lower is better), as the gateway's representative_key would give
    planted_groups: int
    origin: np.ndarray  # index of the original each image was made from (itself for an original)


def _top_bits(scores: np.ndarray, ones: int | None) -> np.ndarray:
    """(n, 64) scores -> uint64 hashes: the `ones` highest-scoring bits set (balanced), or the positive ones."""
    if ones is None:
        bits = scores > 0
    else:
        bits = np.zeros(scores.shape, dtype=bool)
        top = np.argpartition(-scores, ones - 1, axis=1)[:, :ones]
        np.put_along_axis(bits, top, True, axis=1)
    weights = np.uint64(1) << np.arange(BITS - 1, -1, -1, dtype=np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def _flip_balanced(rng: np.random.Generator, hashes: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Flip distance/2 set and distance/2 clear bits of each pHash (DC bit kept): the result stays balanced."""
    out = hashes.copy()
    bits = ((hashes[:, None] >> np.arange(BITS - 1, -1, -1, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    bits[:, 0] = False  # never flip the DC bit: exclude it from both draws
    noise = rng.random(bits.shape)
    for row in np.flatnonzero(distances):
        half = int(distances[row]) // 2
        ones = np.flatnonzero(bits[row])
        zeros = np.flatnonzero(~bits[row])[1:]  # position 0 is the DC bit
        chosen = np.concatenate(
            [ones[np.argsort(noise[row, ones])[:half]], zeros[np.argsort(noise[row, zeros])[:half]]]
        )
        out[row] ^= (np.uint64(1) << (BITS - 1 - chosen).astype(np.uint64)).sum(dtype=np.uint64)
    return out


def _flip_any(rng: np.random.Generator, hashes: np.ndarray, distances: np.ndarray) -> np.ndarray:
    keys = rng.random((len(hashes), BITS))
    positions = np.argsort(keys, axis=1)
    masks = np.arange(BITS)[None, :] < distances[:, None]
    flips = np.where(masks, np.uint64(1) << positions.astype(np.uint64), np.uint64(0)).sum(axis=1, dtype=np.uint64)
    return hashes ^ flips


def _draw(rng: np.random.Generator, histogram: dict[int, int], size: int) -> np.ndarray:
    values = np.array(list(histogram), dtype=np.int64)
    weights = np.array(list(histogram.values()), dtype=np.float64)
    return rng.choice(values, size=size, p=weights / weights.sum())


def _histograms(rng: np.random.Generator, hues: np.ndarray, achromatic: np.ndarray) -> np.ndarray:
    """(n,) product hue (0-HUE_BINS-1), (n,) bool -> (n, HSV_HIST_BINS) float32 foreground colour histograms.

    A coloured product: its hue's and a neighbouring hue's saturation bins, plus 10-40% of the mass in the achromatic
    tone bins (shadows, trims). A black/grey/white product (a third of a clothing catalog): the tone bins, plus up to
    10% of chromatic mass (skin, a print). Random pairs: median chi-square 0.79, 0.01% within 0.015 (the real
    catalog: 0.53 and 0.045%), so accidental pairs are a little rarer than in real data."""
    n = len(hues)
    hist = np.zeros((n, HIST_BINS), dtype=np.float64)
    rows = np.arange(n)[:, None]
    sat_bins = np.arange(SAT_BINS)[None, :]
    chroma = TONE_BINS + hues[:, None] * SAT_BINS + sat_bins
    hist[rows, chroma] = rng.dirichlet(np.full(SAT_BINS, 0.5), size=n)
    second = (hues + rng.choice([-1, 1], size=n)) % HUE_BINS  # a neighbouring hue: shading, print
    hist[rows, TONE_BINS + second[:, None] * SAT_BINS + sat_bins] += 0.3 * rng.dirichlet(np.full(SAT_BINS, 0.5), size=n)
    hist /= hist.sum(axis=1, keepdims=True)
    tone_share = np.where(achromatic, rng.uniform(0.9, 1.0, size=n), rng.uniform(0.1, 0.4, size=n))
    hist *= (1 - tone_share)[:, None]
    hist[:, :TONE_BINS] += tone_share[:, None] * rng.dirichlet(np.full(TONE_BINS, 0.4), size=n)
    return hist.astype(np.float32)


def _perturb(rng: np.random.Generator, hist: np.ndarray) -> np.ndarray:
    """Copies of histograms at a chi-square of about COPY_CHI2_MEDIAN (lognormal), as edited copies measure."""
    noise = hist * rng.lognormal(0, 1, hist.shape) + rng.dirichlet(np.full(HIST_BINS, 0.2), size=len(hist)) * 0.05
    noise /= noise.sum(axis=1, keepdims=True)
    full = 0.5 * np.sum((hist - noise) ** 2 / (hist + noise + 1e-10), axis=1)
    target = np.exp(rng.normal(np.log(COPY_CHI2_MEDIAN), 1.0, size=len(hist)))
    a = np.clip(np.sqrt(target / np.maximum(full, 1e-12)), 0, 1)[:, None]
    return ((1 - a) * hist + a * noise).astype(np.float32)


def synthetic_catalog(n: int, seed: int = 0, duplicate_share: float = 0.15) -> Synthetic:
    rng = np.random.default_rng(seed)
    n_copies = int(n * duplicate_share)
    n_originals = n - n_copies
    # Styles -> colourways -> images (views); compositions shared by many styles.
    bias_p, bias_d = rng.normal(0, 0.8, BITS), rng.normal(0, 0.8, BITS)
    bias_p[:16] *= 2.5  # the first band (lowest vertical frequencies) is the most predictable
    profile_p = rng.normal(0, 1.3, (COMPOSITIONS, BITS))
    profile_d = rng.normal(0, 2.5, (COMPOSITIONS, BITS))
    colourways = rng.integers(1, 5, size=n_originals)
    style_start = np.cumsum(colourways) - colourways
    n_views = int(np.searchsorted(style_start, n_originals))  # views needed to fill n_originals
    colourways = colourways[:n_views]
    view_of = np.repeat(np.arange(n_views), colourways)[:n_originals]
    composition = rng.integers(0, COMPOSITIONS, size=n_views)
    scores_p = bias_p + profile_p[composition] + rng.normal(0, 0.85, (n_views, BITS))
    scores_p[:, 0] = np.inf  # DC bit
    view_p = _top_bits(scores_p, ones=32)
    view_d = _top_bits(bias_d - 0.25 + profile_d[composition] + rng.normal(0, 1.0, (n_views, BITS)), ones=None)
    # Colourways: same pose, so close hashes; another colour, so a far histogram.
    phash = _flip_balanced(rng, view_p[view_of], rng.choice([0, 2, 4, 6], size=n_originals))
    dhash = _flip_any(rng, view_d[view_of], rng.integers(0, 7, size=n_originals))
    view_hue = rng.integers(0, HUE_BINS, size=n_views)
    colourway = np.arange(n_originals) - np.searchsorted(view_of, view_of)
    hue = (view_hue[view_of] + 4 * colourway) % HUE_BINS
    hist = _histograms(rng, hue, achromatic=rng.random(n_originals) < 1 / 3)

    # Planted duplicates: groups of 1-3 copies of one original.
    group_sizes = []
    while sum(group_sizes) < n_copies:
        group_sizes.append(min(int(rng.choice([1, 1, 1, 2, 3])), n_copies - sum(group_sizes)))
    originals = rng.choice(n_originals, size=len(group_sizes), replace=False)
    source = np.repeat(originals, group_sizes)
    edit = rng.choice(list(EDIT_WEIGHTS), size=n_copies, p=list(EDIT_WEIGHTS.values()))
    p_dist, d_dist = np.zeros(n_copies, np.int64), np.zeros(n_copies, np.int64)
    for kind in EDIT_WEIGHTS:
        rows = np.flatnonzero(edit == kind)
        p_dist[rows] = _draw(rng, PHASH_EDIT_DISTANCES[kind], len(rows))
        d_dist[rows] = _draw(rng, DHASH_EDIT_DISTANCES[kind], len(rows))
    copy_p = _flip_balanced(rng, phash[source], p_dist)
    copy_d = _flip_any(rng, dhash[source], d_dist)
    copy_h = _perturb(rng, hist[source].astype(np.float64))

    order = rng.permutation(n)  # shuffle originals and copies together
    vectors = HashVectors.of(
        np.concatenate([phash, copy_p])[order],
        np.concatenate([dhash, copy_d])[order],
        np.concatenate([hist, copy_h])[order],
    )
    origin = np.concatenate([np.arange(n_originals), source])[order]
    return Synthetic(vectors, rank=rng.permutation(n), planted_groups=len(group_sizes), origin=origin)


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
    from gateway.decisions import ImageAnalysis, cluster_duplicates, select
    from gateway.hashing import ImageHashes

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
    distance = popcount64(v.phash[bi] ^ v.phash[bj]).astype(int)
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
        for lo, hi in ((0, guaranteed_distance(bands, radius)), (guaranteed_distance(bands, radius) + 1, BITS)):
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
        leader, leader_s, leader_cpu, leader_peak = _timed(cluster, images, i, j, synthetic.rank, "leader")
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
        print(f"\n## One product, {args.product_images} images (gateway.decisions)\n")
        print("| case | select ms: median wall / max wall / median CPU | cluster_duplicates ms: same | clusters |")
        print("| --- | --- | --- | --- |")
        for case, r in report["product"].items():
            s, c = r["select_ms"], r["cluster_duplicates_ms"]
            print(
                f"| {case} | {s['median']:.1f} / {s['max']:.1f} / {s['cpu_median']:.1f} "
                f"| {c['median']:.1f} / {c['max']:.1f} / {c['cpu_median']:.1f} | {r['clusters']} |"
            )

    if args.recall_images:
        r = report["recall"] = recall_benchmark(args.recall_images, args.radius, args.bands, args.seed)
        print(f"\n## Recall vs brute force, {r['images']} images ({r['pairs']} duplicate pairs)\n")
        print(
            f"brute force: {r['brute_force_s']:.2f} s wall, {r['brute_force_cpu_s']:.2f} s CPU, "
            f"peak {r['brute_force_peak_mb']:.0f} MB (numpy allocations)\n"
        )
        print("| radius | guaranteed pHash distance | recall | recall by pHash distance |")
        print("| --- | --- | --- | --- |")
        for radius in args.radius:
            rr = r[f"radius_{radius}"]
            parts = ", ".join(f"{k}: {x['recall']:.3f} of {x['pairs']}" for k, x in rr["by_phash_distance"].items())
            print(f"| {radius} | <= {guaranteed_distance(args.bands, radius)} | {rr['recall']:.4f} | {parts} |")

    if args.images:
        s = report["scale"] = scale_benchmark(args.images, args.radius, args.bands, args.seed)
        print(f"\n## Catalog slice, {s['images']} images ({s['hash_vectors_mb']:.0f} MB of hash vectors)\n")
        print(
            "| radius | candidates | duplicate pairs (planted) | recall | pairs s wall (CPU) | peak MB "
            "| leader s wall (CPU) | leader clusters | components s | component clusters |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for radius in args.radius:
            x = s[f"radius_{radius}"]
            print(
                f"| {radius} | {x['candidates']:,} | {x['duplicate_pairs']:,} ({x['planted_pairs']:,}) "
                f"| {x.get('recall_vs_exact', float('nan')):.3f} "
                f"| {x['pairs_s']:.2f} ({x['pairs_cpu_s']:.2f}) | {x['pairs_peak_mb']:.0f} "
                f"| {x['leader_s']:.2f} ({x['leader_cpu_s']:.2f}) | {x['leader_clusters']:,} "
                f"| {x['components_s']:.2f} | {x['components_clusters']:,} |"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["max_rss_mb"] = rss
    print(f"\nprocess peak RSS: {rss:.0f} MB")
    out = args.json or RESULTS / f"cluster-scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
