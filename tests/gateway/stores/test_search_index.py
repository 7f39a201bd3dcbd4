"""Visual-search index: persistence, partitions, replacement, deletion, exact vs HNSW."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from gateway.stores.search_index import SearchIndex


def unit_vectors(n: int, seed: int, dim: int = 64) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_finds_the_same_image_first_and_only_in_the_given_partitions(tmp_path):
    vectors = unit_vectors(6, 0)
    index = SearchIndex(tmp_path / "s.sqlite")
    partitions = ["fruit", "fruit", "fruit", "packages", "packages", "apparel"]
    index.add([(f"p{i}", f"img{i}", partitions[i], vectors[i]) for i in range(6)])
    assert index.partitions() == {"apparel": 1, "fruit": 3, "packages": 2}
    hits = index.search(vectors[4], ["packages"], k=5)
    assert [h.image_id for h in hits] == ["img4", "img3"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)  # float16 storage
    assert {h.partition for h in index.search(vectors[4], ["fruit"], k=5)} == {"fruit"}
    everywhere = index.search(vectors[4], ["fruit", "packages", "apparel"], k=6)
    assert len(everywhere) == 6 and everywhere[0].image_id == "img4"
    assert [h.score for h in everywhere] == sorted((h.score for h in everywhere), reverse=True)
    assert index.search(vectors[0], ["no-such"], k=3) == []


def test_per_product_keeps_a_products_best_image(tmp_path):
    v = unit_vectors(3, 1)
    near = v[0] + 0.05 * v[1]
    index = SearchIndex(tmp_path / "s.sqlite")
    index.add(
        [("p1", "a", "fruit", v[0]), ("p1", "b", "fruit", near / np.linalg.norm(near)), ("p2", "c", "fruit", v[2])]
    )
    per_product = index.search(v[0], ["fruit"], k=2)
    assert [(h.product_id, h.image_id) for h in per_product] == [("p1", "a"), ("p2", "c")]
    assert [h.image_id for h in index.search(v[0], ["fruit"], k=2, per_product=False)] == ["a", "b"]


def test_index_survives_a_restart_replaces_by_image_id_and_removes_products(tmp_path):
    path = tmp_path / "s.sqlite"
    v = unit_vectors(4, 2)
    index = SearchIndex(path)
    index.add([("p1", "a", "fruit", v[0]), ("p1", "b", "fruit", v[1]), ("p2", "c", "gear", v[2])])
    index.add([("p1", "b", "vegetables", v[3])])  # re-indexed: moves partition, replaces the vector
    index.close()
    reopened = SearchIndex(path)
    assert reopened.partitions() == {"fruit": 1, "gear": 1, "vegetables": 1}
    assert reopened.search(v[3], ["vegetables"], k=1)[0].image_id == "b"
    assert reopened.remove_product("p1") == 2
    assert reopened.remove_product("p1") == 0
    assert reopened.partitions() == {"gear": 1}


def test_a_failed_batch_stores_nothing(tmp_path):
    index = SearchIndex(tmp_path / "s.sqlite")
    v = unit_vectors(2, 3)
    with pytest.raises(sqlite3.IntegrityError):
        index.add([("p1", "a", "fruit", v[0]), ("p2", "b", None, v[1])])  # NOT NULL partition
    assert index.partitions() == {}


def test_hnsw_above_the_exact_limit_agrees_with_exact_search(tmp_path):
    vectors = unit_vectors(3000, 4, dim=128)
    rows = [(f"p{i}", f"i{i}", "fruit", vectors[i]) for i in range(3000)]
    exact = SearchIndex(tmp_path / "exact.sqlite", exact_max=10_000)
    approximate = SearchIndex(tmp_path / "hnsw.sqlite", exact_max=100, ef_search=128)
    exact.add(rows)
    approximate.add(rows)
    queries = unit_vectors(50, 5, dim=128)
    overlap = []
    for q in queries:
        truth = {h.image_id for h in exact.search(q, ["fruit"], k=10, per_product=False)}
        found = {h.image_id for h in approximate.search(q, ["fruit"], k=10, per_product=False)}
        overlap.append(len(truth & found) / 10)
    assert approximate._partitions["fruit"].graph is not None  # really the HNSW path
    assert np.mean(overlap) >= 0.9
    assert approximate.search(vectors[7], ["fruit"], k=1)[0].image_id == "i7"


def test_appending_to_a_large_partition_extends_its_graph_instead_of_rebuilding(tmp_path):
    vectors = unit_vectors(400, 6, dim=32)
    index = SearchIndex(tmp_path / "s.sqlite", exact_max=100)
    index.add([(f"p{i}", f"i{i}", "fruit", vectors[i]) for i in range(300)])
    index.search(vectors[0], ["fruit"], k=1)  # builds the graph
    graph = index._partitions["fruit"].graph
    index.add([(f"p{i}", f"i{i}", "fruit", vectors[i]) for i in range(300, 400)])
    assert index._partitions["fruit"].graph is graph and graph.ntotal == 400
    assert index.search(vectors[350], ["fruit"], k=1)[0].image_id == "i350"
    index.add([("p0", "i0", "fruit", vectors[399])])  # a replacement reloads: the graph is rebuilt on demand
    assert index._partitions["fruit"].graph is None
    assert index.partitions() == {"fruit": 400}
    reopened = SearchIndex(tmp_path / "s.sqlite", exact_max=100)
    assert reopened.search(vectors[350], ["fruit"], k=1)[0].image_id == "i350"
