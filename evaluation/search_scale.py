"""Visual search at catalog scale on the PostgreSQL store (gateway.stores.search_index.SearchIndex): a synthetic
catalog searched flat (exact over every partition), by the cascade in one partition (exact scan), and by the
cascade's HNSW index, with the HNSW's recall@10 against exact search in the same partition
(`python -m evaluation.search_recall --scale N`; several sizes, ef_search and the exact/HNSW crossover:
`python -m loadtest.pg_search_scale`).

Catalogs (1280-d, L2-normalised, in batches so a million rows never sit in memory at once):
- `RealNoiseCatalog`: each row a real indexed embedding plus Gaussian noise (`noise` per dimension; 0.025 keeps a
  cosine of ~0.745 to the source), in its source's partition; queries are the real validation embeddings, routed by
  the category head's probabilities (gateway.decisions.search.search_partitions, top 1).
- `GaussianCatalog` (no embedding cache): seeded standard-normal vectors over the partition shares of the real
  catalog at 100k; queries are noisy copies of indexed rows (same noise: cosine ~0.745 to the source), searched in
  the source's partition. Random vectors have no neighbourhoods: the source is the only real neighbour, so recall@10
  against exact search mostly measures how HNSW orders near-orthogonal strangers (harder than real data).

Databases: `scratch_database` makes a new database at schema head, dropped afterwards, on the server
`database_server` gives: IMGSEL_DATABASE_URL's when set, else an embedded one (tools.database) in a temporary folder.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql

from contract.tensors import EMBEDDING_DIM
from gateway.clients.database import Database
from gateway.decisions.search import search_partitions
from gateway.stores import migrate
from gateway.stores.search_index import SearchIndex
from tools.database import EmbeddedDatabase

Row = tuple[str, str, str, np.ndarray]  # (product_id, image_id, partition, embedding)
# Partition shares of the real-embeddings catalog at 100k images (BENCHMARKS.md, visual search at scale).
PARTITION_SHARES = {"fruit": 0.3745, "packages": 0.2872, "vegetables": 0.2124, "apparel": 0.1169, "gear": 0.0090}
HNSW_INDEX = "search_items_embedding"  # migration 0001: declared on the parent, one per partition
HNSW_DEFINITION = "USING hnsw (embedding halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
BLOCK = 1000  # rows per random draw: a catalog's rows do not depend on the batch size that loads them


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def blockwise(start: int, stop: int, block_vectors) -> np.ndarray:
    """Rows start..stop of a catalog whose vectors are drawn BLOCK rows at a time (`block_vectors(first_row, n)`)."""
    first = start - start % BLOCK
    parts = [block_vectors(b, BLOCK) for b in range(first, stop, BLOCK)]
    return np.concatenate(parts)[start - first : stop - first]


@dataclass
class Query:
    vector: np.ndarray
    partitions: list[str]  # what the cascade (top 1) searches for it


class RealNoiseCatalog:
    """Real indexed embeddings plus noise (see the module docstring)."""

    def __init__(self, real: dict, size: int, seed: int = 0, noise: float = 0.025):
        self.real, self.size, self.seed, self.noise = real, size, seed, noise
        sources = np.flatnonzero(~real["is_query"] & real["valid"])
        self.picks = np.random.default_rng(seed).choice(sources, size=size)
        self.recipe = f"real embeddings + Gaussian noise {noise}/dim (seed {seed})"

    def batch(self, start: int, stop: int) -> list[Row]:
        e, partitions = self.real["embeddings"], self.real["partitions"]
        picks = self.picks[start:stop]
        noise = blockwise(
            start,
            stop,
            lambda b, n: np.random.default_rng([self.seed, 0, b]).normal(0, self.noise, size=(n, e.shape[1])),
        )
        vectors = normalised(e[picks] + noise.astype(np.float32))
        return [(f"p{start + i}", f"i{start + i}", partitions[s], vectors[i]) for i, s in enumerate(picks)]

    def mean_cosine_to_source(self) -> float:
        rows = self.batch(0, min(self.size, 1000))
        e = self.real["embeddings"]
        return float(np.mean([v @ e[s] / np.linalg.norm(e[s]) for (_, _, _, v), s in zip(rows, self.picks)]))

    def queries(self, count: int = 200) -> list[Query]:
        real = self.real
        names = sorted({real["partitions"][s] for s in self.picks})
        out = []
        for qi in np.flatnonzero(real["is_query"] & real["valid"])[:count]:
            probabilities = {c: float(v) for c, v in zip(real["classes"], real["probs"][qi])}
            plan = search_partitions(None, probabilities, names, True, 1)
            out.append(Query(real["embeddings"][qi], list(plan.partitions)))
        return out


def synthetic_catalog(real: dict, size: int, seed: int, noise: float) -> tuple[list[Row], float]:
    """All `size` rows of a RealNoiseCatalog at once, and their mean cosine to their sources (loadtest.gateway_memory
    seeds a whole index from it)."""
    catalog = RealNoiseCatalog(real, size, seed, noise)
    return catalog.batch(0, size), catalog.mean_cosine_to_source()


class GaussianCatalog:
    """Seeded Gaussian vectors over PARTITION_SHARES (see the module docstring)."""

    def __init__(self, size: int, seed: int = 0, noise: float = 0.025, dim: int = EMBEDDING_DIM):
        self.size, self.seed, self.noise, self.dim = size, seed, noise, dim
        names = list(PARTITION_SHARES)
        shares = np.array([PARTITION_SHARES[n] for n in names])
        picks = np.random.default_rng(seed).choice(len(names), size=size, p=shares / shares.sum())
        self.partitions = [names[i] for i in picks]
        self.recipe = f"seeded Gaussian, L2-normalised (seed {seed}); queries: indexed rows + noise {noise}/dim"

    def batch(self, start: int, stop: int) -> list[Row]:
        vectors = normalised(
            blockwise(start, stop, lambda b, n: np.random.default_rng([self.seed, 0, b]).standard_normal((n, self.dim)))
        )
        return [(f"p{start + i}", f"i{start + i}", self.partitions[start + i], vectors[i]) for i in range(stop - start)]

    def mean_cosine_to_source(self) -> float:
        rows = self.batch(0, min(self.size, 1000))
        sources = np.array([v for *_, v in rows])
        copies = self._copies(sources)
        return float(np.mean(np.sum(sources * copies, axis=1)))

    def _copies(self, sources: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1])
        return normalised(sources + rng.normal(0, self.noise, size=sources.shape).astype(np.float32))

    def queries(self, count: int = 200, batch: int = 10_000) -> list[Query]:
        """Noisy copies of `count` rows of the first batch (the same rows whatever the batch size the load used)."""
        rows = self.batch(0, min(self.size, batch))
        chosen = np.random.default_rng([self.seed, 2]).choice(len(rows), size=min(count, len(rows)), replace=False)
        copies = self._copies(np.array([rows[i][3] for i in chosen]))
        return [Query(copies[k], [rows[i][2]]) for k, i in enumerate(chosen)]


def with_database(url: str, name: str) -> str:
    """The same server's URL with another database name (URL form: postgresql://user:pw@host/db?params)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def database_server(workdir: Path, shared_buffers: str | None = None) -> Iterator[str]:
    """URL of a PostgreSQL server to make scratch databases on: IMGSEL_DATABASE_URL when set, else an embedded server
    with its data in `workdir`, stopped afterwards. `shared_buffers`: set on the embedded server (ALTER SYSTEM, then a
    restart), to see what the buffer cache is worth; None keeps the server's default (128 MB for the embedded one)."""
    url = os.environ.get("IMGSEL_DATABASE_URL", "")
    if url:
        if shared_buffers:
            raise ValueError("shared_buffers is set on the embedded server only, not on IMGSEL_DATABASE_URL's")
        yield url
        return
    embedded = EmbeddedDatabase(workdir)
    try:
        url = embedded.start()
        if shared_buffers:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(shared_buffers)))
            embedded.stop()
            url = embedded.start()
        yield url
    finally:
        embedded.stop()


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """URL of a new database at schema head on that server, dropped afterwards."""
    name = f"imgsel_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(server_url, name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@asynccontextmanager
async def bench_database(url: str):
    """The gateway's Database with timeouts long enough for bulk loads and index builds."""
    database = Database(url, pool_size=2, timeout_s=7200.0, migrate_schema=False, breaker_cooldown_s=1.0)
    try:
        yield database
    finally:
        await database.close()


async def load(index: SearchIndex, catalog, batch: int, progress=None) -> dict:
    """Every catalog row through SearchIndex.add, `batch` rows per call (one transaction each, as the API adds); the
    add rate over the last tenth of the rows says what one more row costs at this size."""
    started = time.perf_counter()
    elapsed_at: dict[int, float] = {}
    for start in range(0, catalog.size, batch):
        stop = min(catalog.size, start + batch)
        await index.add(catalog.batch(start, stop))
        elapsed_at[stop] = time.perf_counter() - started
        if progress and ((stop // batch) % 10 == 0 or stop == catalog.size):
            progress(f"added {stop:,} / {catalog.size:,} ({elapsed_at[stop]:.0f} s)")
    tail_start = max([0] + [stop for stop in elapsed_at if stop <= catalog.size * 0.9])
    tail_s = elapsed_at[catalog.size] - elapsed_at.get(tail_start, 0.0)
    return {
        "add_seconds": round(elapsed_at[catalog.size], 1),
        "add_rows_per_s_last_tenth": round((catalog.size - tail_start) / max(tail_s, 1e-9), 1),
    }


async def set_storage(database: Database, storage: str) -> str:
    """Storage of the embedding column on every partition (made later too), before any row is stored: "plain" (kept
    in the row, as migration 0001 sets it) or "external" (pgvector's default, the state before 0001 set it: a 2.5 KB
    halfvec moved out of line to TOAST). Returns what the partitions' catalog says afterwards."""
    if storage not in ("external", "plain", "main"):
        raise ValueError(f"storage: {storage}")
    async with database.transaction() as db:
        await db.execute(sql.SQL(f"ALTER TABLE search_items ALTER COLUMN embedding SET STORAGE {storage.upper()}"))
    return storage


async def embedding_storage(database: Database) -> list[str]:
    """attstorage of the embedding column over the partitions (e: external, p: plain, m: main)."""
    async with database.transaction() as db:
        cursor = await db.execute(
            "SELECT DISTINCT a.attstorage::text FROM pg_attribute a JOIN pg_inherits i ON i.inhrelid = a.attrelid "
            "WHERE i.inhparent = 'search_items'::regclass AND a.attname = 'embedding'"
        )
        return sorted(row[0] for row in await cursor.fetchall())


async def drop_hnsw(database: Database) -> None:
    async with database.transaction() as db:
        await db.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(HNSW_INDEX)))


async def create_hnsw(database: Database, maintenance_work_mem: str) -> float:
    """The HNSW index of every partition, built after the load (CREATE INDEX on the parent); seconds."""
    started = time.perf_counter()
    async with database.transaction() as db:
        await db.execute("SELECT set_config('maintenance_work_mem', %s, true)", (maintenance_work_mem,))
        create = sql.SQL(f"CREATE INDEX {{}} ON search_items {HNSW_DEFINITION}")
        await db.execute(create.format(sql.Identifier(HNSW_INDEX)))
    return round(time.perf_counter() - started, 1)


async def disk_usage(database: Database) -> dict:
    """Bytes on disk over the partitions: table (heap + TOAST), all indexes, the HNSW indexes alone."""
    async with database.transaction() as db:
        cursor = await db.execute(
            """
            SELECT coalesce(sum(pg_table_size(i.inhrelid)), 0), coalesce(sum(pg_indexes_size(i.inhrelid)), 0),
                   (SELECT coalesce(sum(pg_relation_size(x.indexrelid)), 0)
                      FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
                      JOIN pg_inherits p ON p.inhrelid = x.indrelid
                     WHERE a.amname = 'hnsw' AND p.inhparent = 'search_items'::regclass)
              FROM pg_inherits i WHERE i.inhparent = 'search_items'::regclass
            """
        )
        table, indexes, hnsw = await cursor.fetchone()
    mb = 2**20
    return {
        name: round(float(value) / mb, 1)
        for name, value in (("table_mb", table), ("indexes_mb", indexes), ("hnsw_mb", hnsw))
    }


async def timed_search(index: SearchIndex, query: Query, partitions: list[str], k: int, per_product: bool):
    t = time.perf_counter()
    hits = await index.search(query.vector, partitions, k, per_product=per_product)
    return [h.image_id for h in hits], time.perf_counter() - t


async def search_latency_and_recall(
    database: Database,
    queries: list[Query],
    ef_values: tuple[int, ...] = (64,),
    k: int = 10,
    exact_queries: int | None = None,
    warmup: int = 10,
) -> dict:
    """k results per query, images not collapsed per product: flat exact search over every partition (the first
    `exact_queries` queries; None: all), the cascade's exact scan, and the cascade's HNSW at each ef_search with its
    recall@k against that exact scan. Each kind of search runs as its own pass over the queries, after `warmup`
    untimed ones: interleaved, the exact scans would evict the HNSW index from shared buffers before every HNSW
    search, which a service answering by HNSW does not see."""
    exact = SearchIndex(database, exact_max=2**62)
    every = list(await exact.partitions())
    flat = queries if exact_queries is None else queries[:exact_queries]

    async def timed_pass(index: SearchIndex, chosen: list[Query], everywhere: bool) -> tuple[list, list[float]]:
        for query in chosen[:warmup]:
            await index.search(query.vector, every if everywhere else query.partitions, k, per_product=False)
        found, seconds = [], []
        for query in chosen:
            ids, s = await timed_search(index, query, every if everywhere else query.partitions, k, False)
            found.append(set(ids))
            seconds.append(s)
        return found, seconds

    lat: dict[str, list[float]] = {"flat_exact": (await timed_pass(exact, flat, True))[1]} if flat else {}
    truth, lat["cascade_exact"] = await timed_pass(exact, queries, False)
    recall = {}
    for ef in ef_values:
        found, lat[f"cascade_hnsw_ef{ef}"] = await timed_pass(SearchIndex(database, 0, ef), queries, False)
        recall[ef] = [len(t & f) / max(len(t), 1) for t, f in zip(truth, found)]
    out: dict = {"queries": len(queries), "flat_queries": len(flat)}
    async with database.transaction() as db:
        out["shared_buffers"] = (await (await db.execute("SHOW shared_buffers")).fetchone())[0]
    for name, samples in lat.items():
        out[f"{name}_ms_p50"] = percentile_ms(samples, 50)
        out[f"{name}_ms_p99"] = percentile_ms(samples, 99)
    for ef, values in recall.items():
        out[f"hnsw_ef{ef}_recall_at_{k}"] = round(float(np.mean(values)), 4)
    return out


async def scale_benchmark(
    url: str,
    catalog,
    batch: int = 1000,
    build: str = "incremental",
    storage: str = "plain",
    maintenance_work_mem: str = "64MB",
    ef_values: tuple[int, ...] = (64,),
    queries: int = 200,
    exact_queries: int | None = None,
    progress=None,
) -> dict:
    """Load `catalog` into the empty database at `url` and measure it. `build`: "incremental" (the HNSW index is
    there while rows are added, as in the service) or "after_load" (rows added without it, then CREATE INDEX).
    `storage`: of the embedding column (set_storage)."""
    async with bench_database(url) as database:
        await set_storage(database, storage)
        if build == "after_load":
            await drop_hnsw(database)
        result: dict = {
            "vectors": catalog.size,
            "recipe": catalog.recipe,
            "mean_cosine_to_source": round(catalog.mean_cosine_to_source(), 3),
            "build": build,
            "storage": storage,
        }
        result |= await load(SearchIndex(database), catalog, batch, progress)
        if build == "after_load":
            result["maintenance_work_mem"] = maintenance_work_mem
            result["create_index_seconds"] = await create_hnsw(database, maintenance_work_mem)
        async with database.transaction() as db:
            await db.execute("ANALYZE search_items")
        result["partitions"] = await SearchIndex(database).partitions()
        result["disk"] = await disk_usage(database)
        result["attstorage"] = await embedding_storage(database)
        result |= await search_latency_and_recall(
            database, catalog.queries(queries), ef_values, exact_queries=exact_queries
        )
    return result
