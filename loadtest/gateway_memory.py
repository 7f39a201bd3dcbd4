"""Resident memory of the gateway process with a catalog-sized visual-search index, against an empty-index baseline:
when ready, after one POST /v1/search per partition (before the PostgreSQL store this built the in-gateway HNSW
graphs of the partitions above IMGSEL_SEARCH_EXACT_MAX), after 50 more searches. A private stack (Triton + gateway)
on loopback per run.

    python -m loadtest.gateway_memory [--images 100000] [--triton-home DIR] [--json out.json]

The index is seeded into the data directory's embedded PostgreSQL through gateway.stores.search_index.SearchIndex
(the service's own write path, HNSW index maintained) before the stack starts. The figure before the PostgreSQL store
(commit 407aba2) came from this script's first version, which seeded `search.sqlite` and measured the in-gateway
float32 matrix and faiss graphs. Vectors (L2-normalised, 1280-d):
`synthetic_catalog` (evaluation.search_scale: real embeddings plus noise, in their source's partition) when the
embedding cache it needs is on disk; otherwise seeded Gaussian vectors over the partition sizes of that catalog at
100,000 images (BENCHMARKS.md), scaled to `--images`. The JSON says which.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from build_engines.triton_server import DEFAULT_DEST
from gateway.clients.database import Database
from gateway.settings import PROJECT_ROOT
from gateway.stores.search_index import SearchIndex
from loadtest.stack_processes import rss_mb, stack_processes, status_mb
from tools.database import EmbeddedDatabase
from tools.json_output import emit
from tools.launcher import running_stack, settings_on_free_ports
from training.datasets import DEFAULT_DATA
from training.embedding_cache import DEFAULT_CACHE, analysis_fingerprint, file_list_digest

DIMENSIONS = 1280
# synthetic_catalog's partitions at 100,000 images (BENCHMARKS.md, visual search at catalog scale), largest first.
PARTITION_SIZES = {"fruit": 37_451, "packages": 28_724, "vegetables": 21_238, "apparel": 11_689, "gear": 898}
SEED_BATCH = 2_000  # rows per SearchIndex.add (one transaction each)
MORE_SEARCHES = 50


def embedding_cache_file(data_root: Path, cache_dir: Path) -> Path | None:
    """The file training.embedding_cache.cached_embeddings would read for evaluation.search_recall.real_data, when it
    is on disk (without it real_data would embed every photo first: not this script's business)."""
    if not (data_root / "grocery" / "classes.csv").is_file():
        return None
    from contract.categories_file import load_catalog
    from training.datasets import development_data

    classes = load_catalog().category_head.classes
    labelled = development_data(data_root / "grocery", data_root / "catalog" / "manifest.csv", classes)
    key = file_list_digest(labelled.paths, salt=analysis_fingerprint())[:24]
    path = cache_dir / f"category-{key}.npz"
    return path if path.is_file() else None


def gaussian_rows(images: int, seed: int) -> list[tuple[str, str, str, np.ndarray]]:
    """Seeded standard-normal vectors, L2-normalised, one image per product, over PARTITION_SIZES scaled to `images`."""
    rng = np.random.default_rng(seed)
    total = sum(PARTITION_SIZES.values())
    sizes = {name: size * images // total for name, size in PARTITION_SIZES.items()}
    sizes[next(iter(sizes))] += images - sum(sizes.values())  # rounding remainder to the largest partition
    rows = []
    for name, size in sizes.items():
        vectors = rng.standard_normal((size, DIMENSIONS), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows += [(f"{name}-p{i}", f"{name}-i{i}", name, vectors[i]) for i in range(size)]
    return rows


def catalog_rows(images: int, data_root: Path, cache_dir: Path, seed: int) -> tuple[list[tuple], str]:
    """Index rows and the name of the recipe that made them."""
    if embedding_cache_file(data_root, cache_dir) is not None:
        from evaluation.search_recall import real_data
        from evaluation.search_scale import synthetic_catalog

        rows, _ = synthetic_catalog(real_data(data_root, cache_dir), images, seed, noise=0.025)
        return rows, "synthetic_catalog (real embeddings + Gaussian noise 0.025/dim, renormalised)"
    return gaussian_rows(images, seed), (
        f"seeded Gaussian (seed {seed}), L2-normalised; the embedding cache for synthetic_catalog is not in {cache_dir}"
    )


async def _seed(url: str, rows: list[tuple]) -> dict[str, int]:
    database = Database(url, pool_size=2, timeout_s=600.0, migrate_schema=True, breaker_cooldown_s=0.0)
    try:
        index = SearchIndex(database)
        for start in range(0, len(rows), SEED_BATCH):
            await index.add(rows[start : start + SEED_BATCH])
        return await index.partitions()
    finally:
        await database.close()


def seed_index(data_dir: Path, rows: list[tuple]) -> tuple[dict[str, int], float]:
    """Seeds the data directory's embedded database; returns its partitions and the database's size on disk (MB)."""
    database = EmbeddedDatabase(data_dir)
    try:
        partitions = asyncio.run(_seed(database.start(), rows))
    finally:
        database.stop()
    return partitions, round(sum(f.stat().st_size for f in database.pgdata.rglob("*") if f.is_file()) / 2**20, 1)


def query_images(count: int) -> list[str]:
    """Small JPEGs (blocky colour noise, upscaled) as base64: any decodable photo gives the search an embedding."""
    rng = np.random.default_rng(1)
    encoded = []
    for _ in range(count):
        blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(blocks).resize((256, 256), Image.BILINEAR).save(buffer, "JPEG", quality=90)
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the highest resident memory the process has had (the index load and graph builds are transient)."""
    return status_mb(pid, "VmHWM")


def wait_ready(client: httpx.Client, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"/readyz not 200 after {timeout_s:.0f} s: {client.get('/readyz').text}")
        time.sleep(0.5)


def measure(data_dir: Path, triton_home: Path, repository: Path, settle_s: float) -> dict:
    """One stack on `data_dir`: gateway RSS when ready, after one search per partition, after 50 more."""
    settings = settings_on_free_ports(triton_home=str(triton_home), model_repository=str(repository))
    env = {"IMGSEL_DATA_DIR": str(data_dir), "IMGSEL_SEARCH_EXACT_MAX": str(settings.search_exact_max)}
    queries = query_images(5)
    started = time.monotonic()
    with (
        running_stack(settings, extra_env=env),
        httpx.Client(base_url=f"http://{settings.host}:{settings.port}", timeout=600) as client,
    ):
        wait_ready(client)
        ready_s = time.monotonic() - started
        pid = stack_processes(settings)["gateway"]

        def rss() -> float:
            time.sleep(settle_s)
            return round(rss_mb(pid), 1)

        def search(partition: str, query: str) -> float:
            t = time.perf_counter()
            response = client.post("/v1/search", json={"image": {"data": query}, "k": 10, "category": partition})
            response.raise_for_status()
            return round(time.perf_counter() - t, 3)

        partitions = client.get("/v1/index").json()["partitions"]
        steps = {"ready": rss()}
        first_search_s = {name: search(name, queries[0]) for name in PARTITION_SIZES}
        steps["after_one_search_per_partition"] = rss()
        names = list(PARTITION_SIZES)
        for i in range(MORE_SEARCHES):
            search(names[i % len(names)], queries[i % len(queries)])
        steps[f"after_{MORE_SEARCHES}_more_searches"] = rss()
        peak = round(peak_rss_mb(pid), 1)
    return {
        "partitions": partitions,
        "stack_ready_seconds": round(ready_s, 1),
        "gateway_rss_mb": steps,
        "gateway_peak_rss_mb": peak,
        "first_search_seconds": first_search_s,
    }


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="for synthetic_catalog's embedding cache")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--triton-home", type=Path, default=DEFAULT_DEST, help="the unpacked tritonserver wheel")
    parser.add_argument("--model-repository", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each RSS reading")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report: dict = {"commit": git_commit(), "images": args.images}
    with tempfile.TemporaryDirectory(prefix="imgsel-gateway-memory-") as tmp:
        empty, seeded = Path(tmp) / "empty", Path(tmp) / "seeded"
        empty.mkdir()
        seeded.mkdir()
        rows, recipe = catalog_rows(args.images, args.data, args.cache_dir, args.seed)
        started = time.perf_counter()
        _, report["database_mb"] = seed_index(seeded, rows)
        del rows
        report["vector_recipe"] = recipe
        report["seed_seconds"] = round(time.perf_counter() - started, 1)
        report["empty"] = measure(empty, args.triton_home, args.model_repository, args.settle)
        report["indexed"] = measure(seeded, args.triton_home, args.model_repository, args.settle)
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
