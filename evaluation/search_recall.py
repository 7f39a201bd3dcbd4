"""Visual search recall: category cascade vs flat search, on real photos (and, with --scale, at catalog scale:
evaluation.search_scale).

    python -m evaluation.search_recall [--data ../shared/data] [--scale 100000] [--json out.json]
        [--vision <cpu repository>/vision/1/model.onnx]

Real data (cross-domain, the Grocery Store Dataset's use case): the index holds the grocery training photos and the
81 iconic catalog images (product = fine class, partition = its top-level class: fruit / vegetables / packages) plus
the 400 catalog studio photos as distractors (partitions apparel / gear); queries are the 296 grocery validation
phone photos (new photos of indexed products). Embeddings and the category head's probabilities come from the
production path (DALI preprocessing -> EfficientNet-Lite0 -> heads/category.onnx), from the embedding cache the
category-head training fills (training.embedding_cache, same file list) or computed here; with `--vision`, from
that served vision model file instead (e.g. the cpu profile's int8 model: its EMBEDDING and CATEGORY_PROBS). A query
is a hit@k when its product is among the k products returned (one best image per product, as the API returns them by
default).

Scale: a synthetic catalog of `--scale` vectors made from the real embeddings (each a real embedding plus Gaussian
noise, renormalised, in its source's partition) queried with the real validation embeddings: search latency of flat
exact search over everything, the cascade's exact search in one partition, and the cascade's HNSW search, with the
HNSW's recall@10 against exact search in the same partition (more sizes: `python -m loadtest.pg_search_scale`).

The index is gateway.stores.search_index.SearchIndex on PostgreSQL: a new database on the server of
IMGSEL_DATABASE_URL when set, else on an embedded server in a temporary folder (evaluation.search_scale), dropped
afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_OUTPUT, EMBEDDING
from evaluation.search_scale import (
    RealNoiseCatalog,
    bench_database,
    database_server,
    percentile_ms,
    scale_benchmark,
    scratch_database,
)
from gateway.decisions.search import search_partitions
from gateway.stores.search_index import SearchIndex
from tools.json_output import emit
from training.datasets import DEFAULT_DATA, development_data
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings


def category_probabilities(embeddings: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(HEADS_DIR / "category.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: embeddings.astype(np.float32)})[0]


async def run_queries(index: SearchIndex, queries, truth, probs, classes, mode: str, k_values=(1, 5)) -> dict:
    """mode: flat | cascade1 | cascade2 | oracle (the query's true partition, as if the caller gave the category)."""
    hits = {k: 0 for k in k_values}
    routed, latencies, searched_sizes = 0, [], []
    sizes = await index.partitions()
    for q, (product, partition), p in zip(queries, truth, probs):
        probabilities = {c: float(v) for c, v in zip(classes, p)}
        if mode == "oracle":
            plan = search_partitions(partition, probabilities, list(sizes), True, 1)
        else:
            top = {"cascade1": 1, "cascade2": 2}.get(mode, 1)
            plan = search_partitions(None, probabilities, list(sizes), mode != "flat", top)
        routed += partition in plan.partitions
        searched_sizes.append(sum(sizes.get(c, 0) for c in plan.partitions))
        started = time.perf_counter()
        results = await index.search(q, list(plan.partitions), max(k_values))
        latencies.append(time.perf_counter() - started)
        products = [h.product_id for h in results]
        for k in k_values:
            hits[k] += product in products[:k]
    n = len(queries)
    return {
        "queries": n,
        **{f"recall_at_{k}": round(hits[k] / n, 4) for k in k_values},
        "true_partition_searched": round(routed / n, 4),
        "mean_images_searched": round(float(np.mean(searched_sizes)), 1),
        "search_ms_p50": percentile_ms(latencies, 50),
        "search_ms_p95": percentile_ms(latencies, 95),
    }


def served_embeddings(paths: list[Path], vision: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, valid, category probabilities) of `paths` from one vision model file, as the served analyze call
    gives them (the category head spliced into the same model)."""
    from evaluation.vision_runtime import SERVED, analyse_with_vision

    result = analyse_with_vision(vision, (np.fromfile(p, dtype=np.uint8) for p in paths))
    outputs = result.outputs[SERVED]
    if CATEGORY_HEAD_OUTPUT not in outputs:
        raise SystemExit(f"{vision} has no {CATEGORY_HEAD_OUTPUT} output: no category head was spliced in")
    return outputs[EMBEDDING.name].astype(np.float32), result.valid, outputs[CATEGORY_HEAD_OUTPUT]


def real_data(data_root: Path, cache_dir: Path, vision: Path | None = None) -> dict:
    """The real photos' embeddings and category probabilities: the torch float32 backbone (cached) and
    heads/category.onnx, or with `vision` that served model file (uncached)."""
    head = load_catalog().category_head
    classes = head.classes
    labelled = development_data(data_root / "grocery", data_root / "catalog" / "manifest.csv", classes)
    started = time.perf_counter()
    if vision is not None:
        embeddings, valid, probs = served_embeddings(labelled.paths, vision)
        embed_s = time.perf_counter() - started
    else:
        embeddings, valid = cached_embeddings(labelled.paths, cache_dir)  # same file list as the head's training
        embed_s = time.perf_counter() - started
        embeddings = embeddings[: len(labelled.paths)]
        probs = category_probabilities(embeddings)
    is_query = np.array([s == "grocery" and v for s, v in zip(labelled.sources, labelled.validation)])
    return {
        "classes": classes,
        "embeddings": embeddings,
        "valid": valid,
        "probs": probs,
        "products": labelled.groups,
        "partitions": labelled.classes,
        "is_query": is_query,
        "embed_seconds": round(embed_s, 1),
    }


async def real_benchmark(real: dict, url: str, exact_max: int = 5_000, ef_search: int = 64) -> dict:
    """The real photos in the empty database at `url`, searched as the gateway searches (its default exact_max and
    ef_search: every partition of this small index is scanned exactly)."""
    e, products, partitions, is_query = real["embeddings"], real["products"], real["partitions"], real["is_query"]
    rows = [(products[i], f"img{i}", partitions[i], e[i]) for i in np.flatnonzero(~is_query & real["valid"])]
    queries = np.flatnonzero(is_query & real["valid"])
    truth = [(products[i], partitions[i]) for i in queries]
    async with bench_database(url) as database:
        index = SearchIndex(database, exact_max, ef_search)
        started = time.perf_counter()
        await index.add(rows)
        add_s = time.perf_counter() - started
        out = {
            "index": {"images": len(rows), "partitions": await index.partitions(), "add_seconds": round(add_s, 2)},
            "modes": {},
        }
        for mode in ("flat", "cascade1", "cascade2", "oracle"):
            out["modes"][mode] = await run_queries(
                index, e[queries], truth, real["probs"][queries], real["classes"], mode
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--scale", type=int, default=100_000, help="synthetic catalog size (0: skip)")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--vision",
        type=Path,
        help="a vision ONNX model (e.g. <cpu repository>/vision/1/model.onnx): embeddings and category probabilities "
        "from it instead of the torch backbone and heads/category.onnx (not cached)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "grocery" / "classes.csv").is_file():
        print(f"{args.data}: no grocery data (../shared/data)")
        return 2
    real = real_data(args.data, args.cache_dir, args.vision)
    with tempfile.TemporaryDirectory(prefix="imgsel-search-") as tmp:
        report = {"embed_seconds": real["embed_seconds"]}
        with database_server(Path(tmp)) as server:
            with scratch_database(server) as url:
                report["real"] = asyncio.run(real_benchmark(real, url))
            if args.scale:
                with scratch_database(server) as url:
                    report["scale"] = asyncio.run(scale_benchmark(url, RealNoiseCatalog(real, args.scale)))
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
