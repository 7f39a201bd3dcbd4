"""Search recall and scale benchmarks on a small synthetic catalog (no model, no ../shared/data)."""

from __future__ import annotations

import numpy as np

from evaluation.search_recall import real_benchmark, run_queries
from evaluation.search_scale import scale_benchmark
from gateway.stores.search_index import SearchIndex

CLASSES = ("fruit", "apparel")


def synthetic_real(n_products: int = 6, per_product: int = 4, seed: int = 0) -> dict:
    """Products with a direction each; the last image of every product is a query (a new photo of it)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_products, 64))
    rows, products, partitions, is_query = [], [], [], []
    for p in range(n_products):
        for k in range(per_product):
            rows.append(centres[p] + 0.1 * rng.normal(size=64))
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


def test_every_mode_finds_the_product_when_the_category_is_right(tmp_path):
    out = real_benchmark(synthetic_real(), tmp_path)
    assert out["index"]["images"] == 18 and set(out["index"]["partitions"]) == set(CLASSES)
    for mode in ("flat", "cascade1", "cascade2", "oracle"):
        assert out["modes"][mode]["recall_at_1"] == 1.0 and out["modes"][mode]["queries"] == 6
    assert out["modes"]["cascade1"]["mean_images_searched"] < out["modes"]["flat"]["mean_images_searched"]


def test_a_wrong_top_category_costs_the_cascade_but_not_flat_search(tmp_path):
    real = synthetic_real()
    index = SearchIndex(tmp_path / "index.sqlite")
    rows = np.flatnonzero(~real["is_query"])
    index.add([(real["products"][i], f"img{i}", real["partitions"][i], real["embeddings"][i]) for i in rows])
    queries = np.flatnonzero(real["is_query"])
    truth = [(real["products"][i], real["partitions"][i]) for i in queries]
    wrong = real["probs"][queries][:, ::-1]  # the head favours the other partition
    cascade = run_queries(index, real["embeddings"][queries], truth, wrong, CLASSES, "cascade1")
    flat = run_queries(index, real["embeddings"][queries], truth, wrong, CLASSES, "flat")
    index.close()
    assert cascade["true_partition_searched"] == 0.0 and cascade["recall_at_1"] == 0.0
    assert flat["recall_at_1"] == 1.0


def test_scale_benchmark_reports_latency_and_hnsw_recall(tmp_path):
    result = scale_benchmark(synthetic_real(), 300, tmp_path, noise=0.01)
    assert result["vectors"] == 300 and result["queries"] == 6
    assert 0.0 <= result["hnsw_recall_at_10_vs_exact_same_partition"] <= 1.0
    assert result["mean_cosine_to_source"] > 0.9
    assert {"flat_exact_ms_p50", "cascade_exact_ms_p95", "cascade_hnsw_ms_p50"} <= set(result)
