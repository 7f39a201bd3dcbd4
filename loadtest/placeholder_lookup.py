"""Placeholder library lookup at scale (issue #5): gateway.hash_index.HashIndex, linear scan against the index; and
(issue #11) the whole lookup of gateway.stores.placeholders.PlaceholderLibrary on PostgreSQL.

    python -m loadtest.placeholder_lookup [--sizes 1000 100000 1000000] [--queries 1000] [--max-distance 15]
        [--configs 4x3 8x1] [--latency-queries 200] [--seed 0]
    python -m loadtest.placeholder_lookup --store postgres [--sizes ...] [--max-distance 15 16] [--seed-batch 1000]
        [--reloads 3]

Data: the library is `size` uniform random uint64 hashes (random pairs: mean distance 32, P(d <= 15) = 1.2e-5, so
~12 chance matches per query at 1M entries). The queries are `queries` uniform random hashes; for half of them a
near-duplicate is planted in the library (overwriting a random row): the query with k distinct random bits flipped,
k uniform in 0..max_distance + 4, so about 4/5 of the planted ones are within range and the rest just beyond it.

Per size and strategy ("linear", "mih BxR": B bands probed within R bits): build time (tables, lazily built, forced
here), bytes of the numpy structure (hashes + band tables; the id list is the same for all and not counted),
single-query latency p50/p99 over the first --latency-queries queries, and one batch call over all queries (wall and
CPU time, queries/s). "exact" says the index answered exactly what the scan answered. CPU time is process time
(all threads), beside wall time since the machine may be shared.

`--store postgres`: the same library stored through PlaceholderLibrary.add (`--seed-batch` rows per call) in a new
database (IMGSEL_DATABASE_URL's server, else an embedded one; evaluation.search_scale) and matched through
PlaceholderLibrary.match, one query per call, as a request does: per call the version check (one query) and, the
cache being warm, the in-process HashIndex. Per size and max distance: seed time, first match (load + index build),
1-query match p50/p99 with a warm cache, beside the in-process index alone and the version check alone on the same
data, one batch call over all queries, and the reload after a change (one placeholder added, then: the next match;
and apart, loading the rows and building the index), the median of `--reloads`. "found" counts the queries with a
match; "same" says PlaceholderLibrary's distances equal the in-process index's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

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


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3


async def timed_async(awaitable) -> tuple[object, float]:
    """(result, seconds) of awaiting it (a coroutine starts running only when awaited)."""
    w = time.perf_counter()
    out = await awaitable
    return out, time.perf_counter() - w


async def version_check(database) -> None:
    """The query PlaceholderLibrary.snapshot runs before every match, in its own transaction as there."""
    from gateway.stores.placeholders import VERSION_SQL

    async with database.transaction() as db:
        await (await db.execute(VERSION_SQL)).fetchone()


async def measure_postgres(
    url: str, library: np.ndarray, q: np.ndarray, distances: list[int], seed_batch: int, latency_n: int, reloads: int
) -> list[dict]:
    """PlaceholderLibrary on the empty database at `url`, seeded with `library`; one result per max distance."""
    from evaluation.search_scale import bench_database
    from gateway.hashing.bands import radius_for
    from gateway.stores.interfaces import LibraryEntry
    from gateway.stores.placeholders import BANDS, PlaceholderLibrary

    async with bench_database(url) as database:
        store = PlaceholderLibrary(database)
        w = time.perf_counter()
        for start in range(0, len(library), seed_batch):
            rows = library[start : start + seed_batch].tolist()
            await store.add([LibraryEntry(f"p{start + i}", h, 64, 64, None) for i, h in enumerate(rows)])
        seed_s = time.perf_counter() - w
        results = []
        for t in distances:
            radius = radius_for(t, BANDS)
            _, first_s = await timed_async(store.match([int(q[0])], t))
            snapshot = await store.snapshot()
            index = snapshot.index(radius)
            lat, local, version = [], [], []
            for one in q[:latency_n]:
                _, seconds = await timed_async(store.match([int(one)], t))
                lat.append(seconds)
                w = time.perf_counter()
                index.nearest_rows(one[None], t)
                local.append(time.perf_counter() - w)
                version.append((await timed_async(version_check(database)))[1])
            found, batch_s = await timed_async(store.match([int(h) for h in q], t))
            _, reference = index.nearest_rows(q, t)
            same = [m.distance if m else -1 for m in found] == [int(d) if d >= 0 else -1 for d in reference]
            after_change, load_s, build_s = [], [], []
            for k in range(reloads):
                await store.add([LibraryEntry(f"reload-{t}-{k}", int(q[0]) ^ 1, 64, 64, None)])
                _, seconds = await timed_async(store.match([int(q[1])], t))
                after_change.append(seconds)
                await store.add([LibraryEntry(f"reload-{t}-{k}-apart", int(q[0]) ^ 3, 64, 64, None)])
                snapshot, seconds = await timed_async(store.snapshot())
                load_s.append(seconds)
                w = time.perf_counter()
                snapshot.index(radius)
                build_s.append(time.perf_counter() - w)
            results.append(
                {
                    "max_distance": t,
                    "radius": radius,
                    "seed_s": seed_s,
                    "first_match_s": first_s,
                    "p50_ms": percentile_ms(lat, 50),
                    "p99_ms": percentile_ms(lat, 99),
                    "local_p50_ms": percentile_ms(local, 50),
                    "local_p99_ms": percentile_ms(local, 99),
                    "version_p50_ms": percentile_ms(version, 50),
                    "batch_s": batch_s,
                    "reload_match_s": float(np.median(after_change)),
                    "reload_load_s": float(np.median(load_s)),
                    "reload_build_s": float(np.median(build_s)),
                    "found": sum(m is not None for m in found),
                    "same": same,
                }
            )
    return results


def main_postgres(args, distances: list[int]) -> None:
    from evaluation.search_scale import database_server, scratch_database

    print(f"# Placeholder lookup through PostgreSQL: {args.queries} queries, max distances {distances}")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}\n")
    print(
        "| library | max distance | seed s | first match s | match p50 / p99 ms | in-process p50 / p99 ms "
        "| version check p50 ms | batch s | reload: next match s | load rows s | build index s | found | same |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="imgsel-placeholders-") as tmp, database_server(Path(tmp)) as server:
        for size in args.sizes:
            library, q, _ = make_data(size, args.queries, distances[0], args.seed)
            with scratch_database(server) as url:
                results = asyncio.run(
                    measure_postgres(
                        url,
                        library,
                        q,
                        distances,
                        args.seed_batch,
                        min(args.latency_queries, args.queries),
                        args.reloads,
                    )
                )
            for m in results:
                print(
                    f"| {size:,} | {m['max_distance']} | {m['seed_s']:.1f} | {m['first_match_s']:.3f} "
                    f"| {m['p50_ms']:.2f} / {m['p99_ms']:.2f} | {m['local_p50_ms']:.2f} / {m['local_p99_ms']:.2f} "
                    f"| {m['version_p50_ms']:.2f} | {m['batch_s']:.3f} | {m['reload_match_s']:.3f} "
                    f"| {m['reload_load_s']:.3f} | {m['reload_build_s']:.3f} | {m['found']} "
                    f"| {'yes' if m['same'] else 'NO'} |",
                    flush=True,
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("memory", "postgres"), default="memory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--max-distance", type=int, nargs="+", default=[15], help="postgres: several allowed")
    parser.add_argument("--configs", nargs="+", default=["4x3", "8x1"], help="index layouts BANDSxRADIUS")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-batch", type=int, default=1000, help="postgres: rows per PlaceholderLibrary.add")
    parser.add_argument("--reloads", type=int, default=3, help="postgres: changes timed (median)")
    args = parser.parse_args(argv)
    if args.store == "postgres":
        main_postgres(args, args.max_distance)
        return
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs]
    t = args.max_distance[0]

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
