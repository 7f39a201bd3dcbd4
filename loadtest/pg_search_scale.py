"""Visual search on PostgreSQL + pgvector at catalog scale (issue #11): latency, HNSW recall, build time and disk at
several catalog sizes, ef_search against recall, and the partition size where the HNSW index overtakes the exact
scan (the default of IMGSEL_SEARCH_EXACT_MAX).

    python -m loadtest.pg_search_scale [--runs 100000:incremental 1000000:after_load ...]
        [--ef 40 64 100 200] [--ef-at 100000] [--crossover 1000 2000 5000 10000 20000]
        [--crossover-storage external plain] [--queries 200] [--flat-queries N] [--maintenance-work-mem 2GB]
        [--shared-buffers 5GB] [--recipe auto|real|gaussian] [--lock /tmp/imgsel-heavy.lock] [--json out.json]

One embedded PostgreSQL server (or IMGSEL_DATABASE_URL's) for the run, a new database per phase, dropped after it.
Catalogs: evaluation.search_scale (real embeddings plus noise when the embedding cache is on disk, else Gaussian).
Each phase (the crossover, then each size) holds `--lock` (flock) while it runs and lets go between phases, so other
jobs on a shared machine get their turn.

Each run is SIZE[:BUILD[:STORAGE[:QUERIES[:FLAT_QUERIES]]]]. BUILD "incremental" (default) adds every row through
SearchIndex.add with the HNSW index present (as the service does); "after_load" adds them without it and then runs
CREATE INDEX (with `--maintenance-work-mem`). STORAGE of the embedding column: "plain" (default; kept in the row, as
migration 0001 sets it) or "external" (pgvector's default before 0001 set it: each 2.5 KB halfvec out of line in
TOAST); set on the empty table. QUERIES / FLAT_QUERIES default to --queries / --flat-queries.

Measured per run: add and index-build seconds, table / index / HNSW size on disk, p50/p99 of flat exact search over
every partition, of the cascade's exact scan (top-1 partition) and of its HNSW scan, and recall@10 of the HNSW scan
against that exact scan (k 10, images not collapsed per product); the HNSW at every `--ef` value in the first run of
the `--ef-at` size, at ef_search 64 elsewhere.

Crossover: one partition per `--crossover` size, each searched as /v1/search searches by default (k 10, one image per
product: 40 candidates, ef_search 64) by exact scan and by SearchIndex's HNSW path, with the plans PostgreSQL chose
(it may scan small partitions even then), and by the HNSW index forced (sequential scans off); once per
`--crossover-storage`.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pgvector import HalfVector
from psycopg import sql

from evaluation.search_scale import (
    GaussianCatalog,
    Query,
    RealNoiseCatalog,
    bench_database,
    create_hnsw,
    database_server,
    drop_hnsw,
    percentile_ms,
    scale_benchmark,
    scratch_database,
    set_storage,
)
from gateway.settings import PROJECT_ROOT
from gateway.stores.interfaces import Hit
from gateway.stores.search_index import SearchIndex, best_per_product, partition_table
from training.datasets import DEFAULT_DATA
from training.embedding_cache import DEFAULT_CACHE


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def phase_lock(path: str) -> Iterator[None]:
    """flock on `path` for one phase ('' : none); logs how long it waited."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        started = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        if time.monotonic() - started > 1:
            log(f"waited {time.monotonic() - started:.0f} s for {path}")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def catalog_factory(recipe: str, data_root: Path, cache_dir: Path):
    """size, seed -> catalog; real embeddings plus noise when `recipe` is real, or auto and the cache is on disk."""
    if recipe in ("auto", "real"):
        from loadtest.gateway_memory import embedding_cache_file

        if embedding_cache_file(data_root, cache_dir) is not None:
            from evaluation.search_recall import real_data

            real = real_data(data_root, cache_dir)
            return lambda size, seed: RealNoiseCatalog(real, size, seed)
        if recipe == "real":
            raise SystemExit(f"no embedding cache for {data_root} in {cache_dir}")
    return lambda size, seed: GaussianCatalog(size, seed)


async def plan_nodes(database, partition: str, vector: np.ndarray, candidates: int, exact: bool) -> str:
    """The scan nodes of the plan SearchIndex.search runs in `partition` (to check which path a setting takes)."""
    async with database.transaction() as db:
        await db.execute("SELECT set_config('enable_indexscan', %s, true)", ("off" if exact else "on",))
        query = sql.SQL("EXPLAIN SELECT product_id FROM {} ORDER BY embedding <=> %s LIMIT %s").format(
            sql.Identifier(partition_table(partition))
        )
        lines = [row[0] for row in await (await db.execute(query, (HalfVector(vector), candidates))).fetchall()]
    return "; ".join(line.strip().split("  (")[0].lstrip("-> ") for line in lines if "Scan" in line or "Gather" in line)


async def forced_hnsw_search(
    database, partition: str, vector: np.ndarray, candidates: int, ef_search: int, k: int = 10
) -> set[str]:
    """SearchIndex.search's query in one partition with sequential scans off: the HNSW index even where the planner
    would rather scan (small partitions). The image ids of the k best products."""
    value = HalfVector(vector)
    async with database.transaction() as db:
        await db.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(ef_search, candidates)),))
        await db.execute("SELECT set_config('enable_seqscan', 'off', true)")
        query = sql.SQL(
            "SELECT product_id, image_id, 1 - (embedding <=> %s) FROM {} ORDER BY embedding <=> %s LIMIT %s"
        ).format(sql.Identifier(partition_table(partition)))
        rows = await (await db.execute(query, (value, value, candidates))).fetchall()
    hits = sorted((Hit(p, i, partition, float(score)) for p, i, score in rows), key=lambda h: (-h.score, h.image_id))
    return {h.image_id for h in best_per_product(hits, k)}


async def timed_pass(queries: list[Query], search, warmup: int = 10) -> tuple[list[set[str]], list[float]]:
    """`search(query)` over the queries after `warmup` untimed ones: image ids found and seconds, per query."""
    for q in queries[:warmup]:
        await search(q)
    found, seconds = [], []
    for q in queries:
        t = time.perf_counter()
        hits = await search(q)
        seconds.append(time.perf_counter() - t)
        found.append(hits if isinstance(hits, set) else {h.image_id for h in hits})
    return found, seconds


async def measure_partition(database, partition: str, chosen: list[Query]) -> dict:
    """Exact scan, SearchIndex's HNSW path and the forced HNSW index in one partition, as /v1/search searches by
    default. One pass per kind of search, each after 10 untimed ones: interleaved, the exact scans would evict the
    index from shared buffers before every HNSW search."""
    exact = SearchIndex(database, exact_max=2**62)
    hnsw = SearchIndex(database, exact_max=0, ef_search=64)
    lat: dict[str, list[float]] = {}
    truth, lat["exact"] = await timed_pass(chosen, lambda q: exact.search(q.vector, [partition], 10))
    found, lat["hnsw"] = await timed_pass(chosen, lambda q: hnsw.search(q.vector, [partition], 10))
    forced, lat["hnsw_forced"] = await timed_pass(
        chosen, lambda q: forced_hnsw_search(database, partition, q.vector, 40, 64)
    )
    return {
        **{f"{name}_ms_p{pct}": percentile_ms(samples, pct) for name, samples in lat.items() for pct in (50, 99)},
        "hnsw_recall_at_10_products": round(float(np.mean([len(t & f) / len(t) for t, f in zip(truth, found)])), 4),
        "hnsw_forced_recall_at_10_products": round(
            float(np.mean([len(t & f) / len(t) for t, f in zip(truth, forced)])), 4
        ),
        "exact_plan": await plan_nodes(database, partition, chosen[0].vector, 40, exact=True),
        "hnsw_plan": await plan_nodes(database, partition, chosen[0].vector, 40, exact=False),
    }


async def crossover(
    url: str, make_catalog, sizes: list[int], queries: int, storage: str, maintenance_work_mem: str
) -> dict:
    """Exact scan vs HNSW in one partition per size, as /v1/search searches by default."""
    async with bench_database(url) as database:
        await set_storage(database, storage)
        await drop_hnsw(database)  # loaded without the index, built after: the build is measured per size elsewhere
        catalogs, per_size = {}, {}
        for size in sizes:
            catalog = make_catalog(size, size)
            catalogs[size] = catalog
            loader = SearchIndex(database)
            for start in range(0, size, 1000):
                rows = catalog.batch(start, min(size, start + 1000))
                await loader.add([(p, f"{size}-{i}", f"size_{size}", v) for p, i, _, v in rows])
        build_s = await create_hnsw(database, maintenance_work_mem)
        async with database.transaction() as db:
            await db.execute("ANALYZE search_items")
        log(f"crossover: {sum(sizes):,} rows loaded, HNSW built in {build_s} s")
        for size, catalog in catalogs.items():
            per_size[size] = await measure_partition(database, f"size_{size}", catalog.queries(queries))
            log(f"crossover {storage} {size:,}: {per_size[size]}")
    return {
        "storage": storage,
        "queries": queries,
        "k": 10,
        "per_product": True,
        "ef_search": 64,
        "hnsw_build_seconds": build_s,
        "sizes": per_size,
    }


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return result.stdout.strip()


def stop_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


def parse_run(text: str, queries: int, flat_queries: int | None) -> dict:
    """SIZE[:BUILD[:STORAGE[:QUERIES[:FLAT_QUERIES]]]] (see the module docstring)."""
    parts = text.split(":")
    run = {"size": int(parts[0]), "build": "incremental", "storage": "plain", "queries": queries}
    run["flat_queries"] = flat_queries
    for key, value in zip(("build", "storage", "queries", "flat_queries"), parts[1:]):
        run[key] = int(value) if key.endswith("queries") else value
    if run["build"] not in ("incremental", "after_load") or run["storage"] not in ("external", "plain"):
        raise SystemExit(f"bad run {text!r}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=["100000:incremental", "300000:after_load"])
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 64, 100, 200])
    parser.add_argument("--ef-at", type=int, default=100_000, help="size whose first run sweeps --ef")
    parser.add_argument("--crossover", type=int, nargs="*", default=[1000, 2000, 5000, 10_000, 20_000])
    parser.add_argument("--crossover-storage", nargs="+", default=["plain"], choices=("external", "plain"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flat-queries", type=int, default=None, help="flat exact search on the first N (all)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per SearchIndex.add")
    parser.add_argument("--maintenance-work-mem", default="2GB", help="for CREATE INDEX")
    parser.add_argument("--shared-buffers", default=None, help="embedded server only (default: its 128MB)")
    parser.add_argument("--recipe", choices=("auto", "real", "gaussian"), default="auto")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--lock", default="/tmp/imgsel-heavy.lock", help="flock held per phase ('': none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_term)  # a stopped run drops its databases and stops its server too
    runs = [parse_run(text, args.queries, args.flat_queries) for text in args.runs]
    make_catalog = catalog_factory(args.recipe, args.data, args.cache_dir)
    report: dict = {
        "commit": git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "recipe": make_catalog(1000, 0).recipe,
        "crossover": {},
        "runs": [],
    }
    started = time.monotonic()

    def save() -> None:
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")

    swept = False
    with (
        tempfile.TemporaryDirectory(prefix="imgsel-pg-scale-") as tmp,
        database_server(Path(tmp), args.shared_buffers) as server,
    ):
        for storage in args.crossover_storage if args.crossover else []:
            with phase_lock(args.lock), scratch_database(server) as url:
                log(f"crossover at {args.crossover}, {storage} storage")
                report["crossover"][storage] = asyncio.run(
                    crossover(url, make_catalog, args.crossover, args.queries, storage, args.maintenance_work_mem)
                )
            save()
        for run in runs:
            sweep = run["size"] == args.ef_at and not swept
            swept |= sweep
            with phase_lock(args.lock), scratch_database(server) as url:
                log(f"run {run}")
                t = time.monotonic()
                result = asyncio.run(
                    scale_benchmark(
                        url,
                        make_catalog(run["size"], 0),
                        batch=args.batch,
                        build=run["build"],
                        storage=run["storage"],
                        maintenance_work_mem=args.maintenance_work_mem,
                        ef_values=tuple(args.ef) if sweep else (64,),
                        queries=run["queries"],
                        exact_queries=run["flat_queries"],
                        progress=log if run["size"] >= 50_000 else None,
                    )
                )
                result["phase_seconds"] = round(time.monotonic() - t, 1)
                report["runs"].append(result)
                log(json.dumps(result))
            save()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
