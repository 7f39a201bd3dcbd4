"""Placeholder library lookup at scale (issue #5): gateway.hash_index.HashIndex, linear scan against the index.

    python -m loadtest.placeholder_lookup [--sizes 1000 100000 1000000] [--queries 1000] [--max-distance 15]
        [--configs 4x3 8x1] [--latency-queries 200] [--seed 0]

Data: the library is `size` uniform random uint64 hashes (random pairs: mean distance 32, P(d <= 15) = 1.2e-5, so
~12 chance matches per query at 1M entries). The queries are `queries` uniform random hashes; for half of them a
near-duplicate is planted in the library (overwriting a random row): the query with k distinct random bits flipped,
k uniform in 0..max_distance + 4, so about 4/5 of the planted ones are within range and the rest just beyond it.

Per size and strategy ("linear", "mih BxR": B bands probed within R bits): build time (tables, lazily built, forced
here), bytes of the numpy structure (hashes + band tables; the id list is the same for all and not counted),
single-query latency p50/p99 over the first --latency-queries queries, and one batch call over all queries (wall and
CPU time, queries/s). "exact" says the index answered exactly what the scan answered. CPU time is process time
(all threads), beside wall time since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from gateway.hash_index import HashIndex


def make_data(size: int, queries: int, max_distance: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(library, queries, planted count); see the module docstring."""
    rng = np.random.default_rng(seed)
    library = rng.integers(0, 2**64, size=size, dtype=np.uint64, endpoint=False)
    q = rng.integers(0, 2**64, size=queries, dtype=np.uint64, endpoint=False)
    planted = min(queries // 2, size)
    rows = rng.choice(size, planted, replace=False)
    flips = rng.integers(0, max_distance + 5, size=planted)
    for k, (row, nbits) in enumerate(zip(rows, flips)):
        bits = rng.choice(64, nbits, replace=False)
        library[row] = q[k] ^ np.uint64(sum(1 << int(b) for b in bits))
    return library, q, planted


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def measure(library: np.ndarray, q: np.ndarray, t: int, strategy: str, bands: int, radius: int, latency_n: int):
    ids = [f"p{i}" for i in range(len(library))]
    index, build_wall, build_cpu = _timed(
        lambda: _built(HashIndex(ids, library, strategy=strategy, bands=bands, radius=radius))
    )
    lat = []
    for one in q[:latency_n]:
        w = time.perf_counter()
        index.nearest_rows(one[None], t)
        lat.append(time.perf_counter() - w)
    (rows, dist), batch_wall, batch_cpu = _timed(lambda: index.nearest_rows(q, t))
    return {
        "build_wall": build_wall,
        "build_cpu": build_cpu,
        "mb": index.nbytes() / 2**20,
        "p50_ms": float(np.percentile(lat, 50)) * 1e3,
        "p99_ms": float(np.percentile(lat, 99)) * 1e3,
        "batch_wall": batch_wall,
        "batch_cpu": batch_cpu,
        "qps": len(q) / batch_wall,
        "rows": rows,
        "dist": dist,
    }


def _built(index: HashIndex) -> HashIndex:
    index.build()
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--max-distance", type=int, default=15)
    parser.add_argument("--configs", nargs="+", default=["4x3", "8x1"], help="index layouts BANDSxRADIUS")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs]
    t = args.max_distance

    print(f"# Placeholder lookup: {args.queries} queries, max distance {t}")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}\n")
    print(
        "| library | strategy | build wall / CPU s | struct MB | 1-query p50 ms | 1-query p99 ms "
        "| batch wall / CPU s | batch q/s | found | exact |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for size in args.sizes:
        library, q, planted = make_data(size, args.queries, t, args.seed)
        runs = [("linear", "linear", 4, 3)] + [("mih", f"mih {b}x{r}", b, r) for b, r in configs]
        reference = None
        for strategy, label, bands, radius in runs:
            m = measure(library, q, t, strategy, bands, radius, min(args.latency_queries, args.queries))
            if reference is None:
                reference = m
            exact = np.array_equal(m["rows"], reference["rows"]) and np.array_equal(m["dist"], reference["dist"])
            print(
                f"| {size:,} | {label} | {m['build_wall']:.3f} / {m['build_cpu']:.3f} | {m['mb']:.1f} "
                f"| {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['batch_wall']:.3f} / {m['batch_cpu']:.3f} "
                f"| {m['qps']:,.0f} | {int((m['rows'] >= 0).sum())} | {'yes' if exact else 'NO'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
