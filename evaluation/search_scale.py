"""Visual search at catalog scale: a synthetic catalog of real embeddings plus noise, searched flat (exact), by the
cascade in one partition (exact), and by the cascade's HNSW, with the HNSW's recall@10 against exact search in the
same partition (`python -m evaluation.search_recall --scale N`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gateway.decisions.search import search_partitions
from gateway.stores.search_index import SearchIndex


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def synthetic_catalog(real: dict, size: int, seed: int, noise: float) -> tuple[list[tuple], float]:
    """`size` index rows (product, image, partition, vector): each a real indexed embedding plus Gaussian noise,
    renormalised, in its source's partition; and the mean cosine of a copy to its source."""
    rng = np.random.default_rng(seed)
    e, partitions, is_query = real["embeddings"], real["partitions"], real["is_query"]
    sources = np.flatnonzero(~is_query & real["valid"])
    picks = rng.choice(sources, size=size)
    vectors = e[picks] + rng.normal(0, noise, size=(size, e.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cos_to_source = float(np.mean(np.sum(vectors[:1000] * e[picks[:1000]], axis=1)))
    return [(f"p{i}", f"i{i}", partitions[s], vectors[i]) for i, s in enumerate(picks)], cos_to_source


def scale_benchmark(real: dict, size: int, workdir: Path, seed: int = 0, noise: float = 0.025) -> dict:
    """`noise` per dimension: with 1280 dims a source's copies keep a cosine of ~0.7 to it (printed below)."""
    rows, cos_to_source = synthetic_catalog(real, size, seed, noise)
    exact = SearchIndex(workdir / "exact.sqlite", exact_max=size + 1)
    hnsw = SearchIndex(workdir / "hnsw.sqlite", exact_max=1000, ef_search=64)
    started = time.perf_counter()
    exact.add(rows)
    hnsw.add(rows)
    add_s = (time.perf_counter() - started) / 2
    queries = np.flatnonzero(real["is_query"] & real["valid"])[:200]
    lat, recall, build_s = timed_queries(real, queries, exact, hnsw)
    result = {
        "vectors": size,
        "noise_per_dim": noise,
        "mean_cosine_to_source": round(cos_to_source, 3),
        "partitions": exact.partitions(),
        "add_seconds": round(add_s, 1),
        "hnsw_build_seconds_all_partitions": round(build_s or 0.0, 1),
        "queries": len(queries),
        "hnsw_recall_at_10_vs_exact_same_partition": round(float(np.mean(recall)), 4),
    }
    for name, samples in lat.items():
        result[f"{name}_ms_p50"] = percentile_ms(samples, 50)
        result[f"{name}_ms_p95"] = percentile_ms(samples, 95)
    exact.close()
    hnsw.close()
    return result


def timed_queries(
    real: dict, queries: np.ndarray, exact: SearchIndex, hnsw: SearchIndex
) -> tuple[dict[str, list[float]], list[float], float | None]:
    """Per query: the latency of flat exact search, cascade exact search and cascade HNSW search, and the HNSW's
    recall@10 against the exact search of the same partitions. Also the seconds the HNSW graphs took to build."""
    e, classes = real["embeddings"], real["classes"]
    all_partitions = list(exact.partitions())
    lat: dict[str, list[float]] = {"flat_exact": [], "cascade_exact": [], "cascade_hnsw": []}
    recall = []
    build_s = None
    for qi in queries:
        q = e[qi]
        probabilities = {c: float(v) for c, v in zip(classes, real["probs"][qi])}
        plan = search_partitions(None, probabilities, all_partitions, True, 1)
        t = time.perf_counter()
        exact.search(q, all_partitions, 10, per_product=False)
        lat["flat_exact"].append(time.perf_counter() - t)
        t = time.perf_counter()
        truth = {h.image_id for h in exact.search(q, list(plan.partitions), 10, per_product=False)}
        lat["cascade_exact"].append(time.perf_counter() - t)
        if build_s is None:  # first HNSW search of each partition builds its graph: time the builds separately
            t = time.perf_counter()
            for name in all_partitions:
                hnsw.search(q, [name], 1, per_product=False)
            build_s = time.perf_counter() - t
        t = time.perf_counter()
        found = {h.image_id for h in hnsw.search(q, list(plan.partitions), 10, per_product=False)}
        lat["cascade_hnsw"].append(time.perf_counter() - t)
        recall.append(len(truth & found) / max(len(truth), 1))
    return lat, recall, build_s
