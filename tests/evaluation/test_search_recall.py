"""Search recall and scale benchmarks on a small synthetic catalog (no model, no ../shared/data), on a fresh
PostgreSQL database each (tests.database)."""

from __future__ import annotations

import asyncio

import numpy as np

from contract.tensors import EMBEDDING_DIM
from evaluation.search_recall import real_benchmark, routed_recall, run_queries
from evaluation.search_scale import (
    PARTITION_SHARES,
    GaussianCatalog,
    RealNoiseCatalog,
    bench_database,
    scale_benchmark,
)
from gateway.stores.search_index import SearchIndex
from tests.database import fresh_database

CLASSES = ("fruit", "apparel")


def synthetic_real(n_products: int = 6, per_product: int = 4, seed: int = 0) -> dict:
    """Products with a direction each; the last image of every product is a query (a new photo of it)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_products, EMBEDDING_DIM))
    rows, products, partitions, is_query = [], [], [], []
    for p in range(n_products):
        for k in range(per_product):
            rows.append(centres[p] + 0.1 * rng.normal(size=EMBEDDING_DIM))
            products.append(f"product-{p}")
            partitions.append(CLASSES[p % 2])
            is_query.append(k == per_product - 1)
    embeddings = np.array(rows, np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    probs = np.array([[0.9, 0.1] if c == "fruit" else [0.2, 0.8] for c in partitions], np.float32)
    return {
        "classes": CLASSES,
        "embeddings": embeddings,
        "valid": np.ones(len(rows), bool),
        "probs": probs,
        "products": products,
        "partitions": partitions,
        "is_query": np.array(is_query),
    }


def test_every_mode_finds_the_product_when_the_category_is_right():
    out = asyncio.run(real_benchmark(synthetic_real(), fresh_database()))
    assert out["index"]["images"] == 18 and set(out["index"]["partitions"]) == set(CLASSES)
    for mode in ("flat", "cascade1", "cascade2", "oracle"):
        assert out["modes"][mode]["recall_at_1"] == 1.0 and out["modes"][mode]["queries"] == 6
    assert out["modes"]["cascade1"]["mean_images_searched"] < out["modes"]["flat"]["mean_images_searched"]


def test_a_wrong_top_category_costs_the_cascade_but_not_flat_search():
    real = synthetic_real()
    rows = np.flatnonzero(~real["is_query"])
    queries = np.flatnonzero(real["is_query"])
    truth = [(real["products"][i], real["partitions"][i]) for i in queries]
    wrong = real["probs"][queries][:, ::-1]  # the head favours the other partition

    async def run():
        async with bench_database(fresh_database()) as database:
            index = SearchIndex(database)
            await index.add(
                [(real["products"][i], f"img{i}", real["partitions"][i], real["embeddings"][i]) for i in rows]
            )
            cascade = await run_queries(index, real["embeddings"][queries], truth, wrong, CLASSES, "cascade1")
            flat = await run_queries(index, real["embeddings"][queries], truth, wrong, CLASSES, "flat")
        return cascade, flat

    cascade, flat = asyncio.run(run())
    assert cascade["true_partition_searched"] == 0.0 and cascade["recall_at_1"] == 0.0
    assert flat["recall_at_1"] == 1.0


def test_scale_benchmark_reports_latency_hnsw_recall_and_disk():
    catalog = RealNoiseCatalog(synthetic_real(), 300, noise=0.01)
    result = asyncio.run(scale_benchmark(fresh_database(), catalog, batch=128, ef_values=(40, 64)))
    assert result["vectors"] == 300 and result["queries"] == 6 and sum(result["partitions"].values()) == 300
    assert 0.0 <= result["hnsw_ef40_recall_at_10"] <= 1.0 and 0.0 <= result["hnsw_ef64_recall_at_10"] <= 1.0
    assert result["mean_cosine_to_source"] > 0.9
    assert {"flat_exact_ms_p50", "cascade_exact_ms_p99", "cascade_hnsw_ef64_ms_p50"} <= set(result)
    assert result["disk"]["hnsw_mb"] > 0 and result["disk"]["table_mb"] > 0


def test_an_index_built_after_the_load_is_searched_the_same_way():
    catalog = RealNoiseCatalog(synthetic_real(), 200, noise=0.01)
    result = asyncio.run(scale_benchmark(fresh_database(), catalog, build="after_load"))
    assert result["create_index_seconds"] >= 0 and result["disk"]["hnsw_mb"] > 0
    assert result["hnsw_ef64_recall_at_10"] > 0.5


def test_gaussian_catalog_rows_do_not_depend_on_the_batch_size_and_queries_copy_indexed_rows():
    catalog = GaussianCatalog(2500, seed=3)
    whole = catalog.batch(0, 2500)
    pieces = catalog.batch(0, 700) + catalog.batch(700, 2100) + catalog.batch(2100, 2500)
    assert [r[1] for r in whole] == [r[1] for r in pieces]
    assert all(np.array_equal(a[3], b[3]) for a, b in zip(whole, pieces))
    assert set(r[2] for r in whole) == set(PARTITION_SHARES)
    assert 0.7 < catalog.mean_cosine_to_source() < 0.8
    queries = catalog.queries(20)
    best = [max((float(q.vector @ r[3]), r[2]) for r in whole) for q in queries]
    assert all(score > 0.7 and [partition] == q.partitions for (score, partition), q in zip(best, queries))


def test_routed_recall_searches_the_partitions_of_its_mode():
    """The iconic protocol's exact search: every mode finds the product when routing is right; a head that favours
    the wrong partition makes the top-1 cascade miss every query while flat and oracle still find them."""
    real = synthetic_real()
    index = np.flatnonzero(~real["is_query"])
    queries = np.flatnonzero(real["is_query"])
    truth = [(real["products"][i], real["partitions"][i]) for i in queries]
    meta = [(real["products"][i], real["partitions"][i]) for i in index]
    e, probs = real["embeddings"], real["probs"][queries]

    def recall(mode, p):
        return routed_recall(e[queries], truth, p, CLASSES, e[index], meta, mode)

    for mode in ("flat", "cascade1", "cascade2", "oracle"):
        assert recall(mode, probs)["recall_at_1"] == 1.0, mode
    wrong = probs[:, ::-1]
    assert recall("cascade1", wrong)["recall_at_5"] == 0.0 and recall("cascade1", wrong)["true_partition_searched"] == 0
    assert recall("flat", wrong)["recall_at_1"] == 1.0 and recall("oracle", wrong)["recall_at_1"] == 1.0
