"""Visual search recall: category cascade vs flat search, on real photos (and, with --scale, at catalog scale:
evaluation.search_scale).

    python -m evaluation.search_recall [--data ../shared/data] [--scale 100000] [--json out.json]
        [--vision <cpu repository>/analyze/1/vision.onnx] [--vector embedding|search]
    python -m evaluation.search_recall --protocol iconic [--data ../shared/data] [--json out.json]

Iconic protocol (snap-and-search; MODELS.md "search head"): queries are the 296 grocery validation phone photos, the
index holds the 81 iconic images only (one catalog picture per product); recall@1/@5 flat, cascade (top 1 and top 2
partitions by the category head on EMBEDDING) and oracle (the true partition), exact cosine search, for EMBEDDING and
for the search head (heads/search.onnx). The search head trained on every grocery product's train photos, so the
same queries are also reported for the held-out grocery products only (training.splits.is_validation), with a head
retrained without them (the card's config): new products, as the issue's held-out shops are; against all 81 iconic
images and against their own iconic images only (a catalog of new products, as a shop's is). Plus a multi-view check
on products/: each picture of a multi-view product of a GPL/AGPL shop (never trained on) against every products/
picture, and against those shops' pictures only (itself left out).

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
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from contract.tensors import CATEGORY_HEAD_OUTPUT, EMBEDDING, SEARCH_EMBEDDING, SEARCH_HEAD_MODEL
from evaluation.search_scale import (
    RealNoiseCatalog,
    bench_database,
    database_server,
    percentile_ms,
    scale_benchmark,
    scratch_database,
)
from gateway.decisions.search import DEFAULT_SEARCH_CONFIDENCE, search_partitions
from gateway.stores.search_index import SearchIndex
from tools.json_output import emit
from training.datasets import DEFAULT_DATA, development_data
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings


def category_probabilities(embeddings: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(HEADS_DIR / "category.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: embeddings.astype(np.float32)})[0]


DEFAULT_SEARCH_HEAD = HEADS_DIR / f"{SEARCH_HEAD_MODEL}.onnx"


def search_head_vectors(embeddings: np.ndarray, path: Path = DEFAULT_SEARCH_HEAD) -> np.ndarray:
    """SEARCH_EMBEDDING of `embeddings` through a search head file (default the committed heads/search.onnx), as
    the vision model computes it."""
    import onnxruntime as ort

    if not path.is_file():
        raise SystemExit(
            f"{path} not found: python -m training.search_head writes it (--write-anyway --out DIR for one that is "
            "not served, then --search-head DIR/search.onnx)"
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {EMBEDDING.name: np.ascontiguousarray(embeddings, dtype=np.float32)})[0]


# flat: every partition; cascade: the served default (top 1, then more until DEFAULT_SEARCH_CONFIDENCE of the
# head's probability is covered); cascade1 / cascade2: exactly the top 1 / 2; oracle: the query's true partition.
MODES = ("flat", "cascade", "cascade1", "cascade2", "oracle")


def mode_plan(mode: str, partition: str, probabilities: dict[str, float], available: list[str]):
    """The partitions a query searches in `mode` (MODES)."""
    if mode == "oracle":
        return search_partitions(partition, probabilities, available, True, 1)
    if mode == "cascade":
        return search_partitions(None, probabilities, available, True, 1, DEFAULT_SEARCH_CONFIDENCE)
    top = {"cascade1": 1, "cascade2": 2}.get(mode, 1)
    return search_partitions(None, probabilities, available, mode != "flat", top)


def routed_recall(
    queries: np.ndarray, truth: list[tuple[str, str]], probs: np.ndarray, classes, index: np.ndarray, index_meta, mode
) -> dict:
    """recall@1/@5 of exact cosine search over the partitions search_partitions picks (`mode` as run_queries);
    `index_meta`: (product, partition) per index row; a product scores its best picture."""
    index_products = np.array([p for p, _ in index_meta])
    index_partitions = np.array([c for _, c in index_meta])
    available = sorted(set(index_partitions.tolist()))
    similarity = queries @ index.T
    hits = {1: 0, 5: 0}
    routed, searched = 0, 0
    for row, ((product, partition), p) in enumerate(zip(truth, probs)):
        probabilities = {c: float(v) for c, v in zip(classes, p)}
        plan = mode_plan(mode, partition, probabilities, available)
        routed += partition in plan.partitions
        inside = np.isin(index_partitions, plan.partitions)
        searched += int(inside.sum())
        scores = np.where(inside, similarity[row], -np.inf)
        ranked: list[str] = []
        for j in np.argsort(-scores, kind="stable"):
            if not np.isfinite(scores[j]) or len(ranked) == 5:
                break
            if index_products[j] not in ranked:
                ranked.append(index_products[j])
        for k in hits:
            hits[k] += product in ranked[:k]
    n = len(queries)
    return {
        "queries": n,
        **{f"recall_at_{k}": round(hits[k] / n, 4) for k in hits},
        "true_partition_searched": round(routed / n, 4),
        "share_of_index_searched": round(searched / (n * len(index_partitions)), 4),
    }


def iconic_benchmark(
    data_root: Path, cache_dir: Path, vision: Path | None = None, head: Path = DEFAULT_SEARCH_HEAD
) -> dict:
    """The iconic protocol (module docstring): EMBEDDING vs SEARCH_EMBEDDING, all grocery val photos and the held-out
    products' ones, plus the products/ multi-view check. With `vision` (a served vision model file): the queries' and
    the iconic images' vectors and category probabilities from it instead (no held-out head, no multi-view check)."""
    from training import search_head

    data = search_head.retrieval_data(data_root, cache_dir)
    parts = search_head.splits(data)
    plain = data.embeddings[: data.n]
    classes = load_catalog().category_head.classes
    card = json.loads(head.with_suffix(".json").read_text())
    grocery = np.array([s == "grocery" for s in data.source]) & np.array(data.valid)
    iconic = np.flatnonzero(grocery & np.array(data.catalog))
    photos = grocery & ~np.array(data.catalog) & np.array(data.evaluation_only)
    report = {
        "index": f"{len(iconic)} grocery iconic images (one per product)",
        "held_out_products": card["unseen_grocery_products"],
        "results": [],
    }
    if vision is None:
        probs = category_probabilities(plain)
        searched = search_head_vectors(plain, head)  # first: a missing head file fails before the retraining
        started = time.process_time()
        held_out_head = search_head.fit(
            data, np.flatnonzero(parts.trainable & ~parts.unseen), search_head.HeadConfig(**card["config"])
        )
        report["held_out_head_fit_cpu_s"] = round(time.process_time() - started, 1)
        vectors = {
            "EMBEDDING": search_head.project(None, plain),
            "SEARCH_EMBEDDING": searched,
            "SEARCH_EMBEDDING, head trained without these products": search_head.project(held_out_head, plain),
        }
    else:
        vectors, probs = served_vectors(data, np.concatenate([iconic, np.flatnonzero(photos)]), vision)
        report["vision"] = str(vision)
    held_out_photos = np.flatnonzero(photos & parts.unseen)
    # (queries, index): every val photo against all 81 iconic images; the held-out products' photos against the same
    # index, and against their own iconic images only: a catalog of products no head trained on, as a shop's is
    # (in the mixed index, the iconic images a head was trained on attract new products' photos: MODELS.md "search").
    query_sets = {
        "all 81 products": (np.flatnonzero(photos), iconic),
        "held-out products": (held_out_photos, iconic),
        "held-out products, index of their own iconic images only": (held_out_photos, iconic[parts.unseen[iconic]]),
    }
    for query_name, (rows, index_rows) in query_sets.items():
        truth = [(data.products[i], data.partition[i]) for i in rows]
        index_meta = [(data.products[i], data.partition[i]) for i in index_rows]
        for vector_name, z in vectors.items():
            if vector_name.startswith("SEARCH_EMBEDDING, head trained") and not query_name.startswith("held-out"):
                continue
            for mode in MODES:
                report["results"].append(
                    {
                        "query_set": query_name,
                        "vector": vector_name,
                        "mode": mode,
                        **routed_recall(z[rows], truth, probs[rows], classes, z[index_rows], index_meta, mode),
                    }
                )
    if vision is None:
        shops = np.array([s == "products" for s in data.source]) & np.array(data.valid)
        unseen_shops = np.flatnonzero(shops & np.array(data.evaluation_only))
        report["multiview_untrained_shops"] = {
            "queries": "pictures of multi-view products of GPL/AGPL shops (never trained on)",
            "index": f"all {int(shops.sum())} products/ pictures, the query itself left out",
            **{
                name: search_head.multiview(data, z, unseen_shops, np.flatnonzero(shops))
                for name, z in list(vectors.items())[:2]
            },
        }
        report["multiview_untrained_shops_own_index"] = {
            "queries": "the same pictures",
            "index": f"the {len(unseen_shops)} pictures of those shops only, the query itself left out",
            **{
                name: search_head.multiview(data, z, unseen_shops, unseen_shops)
                for name, z in list(vectors.items())[:2]
            },
        }
    return report


def served_vectors(data, rows: np.ndarray, vision: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """EMBEDDING, SEARCH_EMBEDDING and CATEGORY_PROBS of `rows` from the served vision model file, in rows of the
    full set (other rows zero)."""
    from evaluation.vision_runtime import SERVED, analyse_with_vision

    result = analyse_with_vision(vision, (np.fromfile(data.paths[i], dtype=np.uint8) for i in rows))
    outputs = result.outputs[SERVED]
    if SEARCH_EMBEDDING.name not in outputs:
        raise SystemExit(f"{vision} has no {SEARCH_EMBEDDING.name} output: no search head was spliced in")
    full = {}
    for name in (EMBEDDING.name, SEARCH_EMBEDDING.name, CATEGORY_HEAD_OUTPUT):
        full[name] = np.zeros((data.n, outputs[name].shape[1]), np.float32)
        full[name][rows] = outputs[name]
    probs = full.pop(CATEGORY_HEAD_OUTPUT)
    return full, probs


async def run_queries(index: SearchIndex, queries, truth, probs, classes, mode: str, k_values=(1, 5)) -> dict:
    """mode: one of MODES (mode_plan)."""
    hits = {k: 0 for k in k_values}
    routed, latencies, searched_sizes = 0, [], []
    sizes = await index.partitions()
    for q, (product, partition), p in zip(queries, truth, probs):
        probabilities = {c: float(v) for c, v in zip(classes, p)}
        plan = mode_plan(mode, partition, probabilities, list(sizes))
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
    e = real.get("vectors", real["embeddings"])  # what is indexed and queried: EMBEDDING unless --vector search
    products, partitions, is_query = real["products"], real["partitions"], real["is_query"]
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
        for mode in MODES:
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
    parser.add_argument("--protocol", choices=["gallery", "iconic"], default="gallery")
    parser.add_argument(
        "--search-head",
        type=Path,
        default=DEFAULT_SEARCH_HEAD,
        help="the search head file (its card .json beside it): default %(default)s; one written elsewhere by "
        "python -m training.search_head --write-anyway --out DIR",
    )
    parser.add_argument(
        "--vector",
        choices=["embedding", "search"],
        default="embedding",
        help="gallery protocol: index and query EMBEDDING, or the search head's SEARCH_EMBEDDING (heads/search.onnx)",
    )
    parser.add_argument(
        "--vision",
        type=Path,
        help="a vision ONNX model (e.g. <cpu repository>/analyze/1/vision.onnx): embeddings and category probabilities "
        "from it instead of the torch backbone and heads/category.onnx (not cached)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "grocery" / "classes.csv").is_file():
        print(f"{args.data}: no grocery data (../shared/data)")
        return 2
    if args.protocol == "iconic":
        emit(iconic_benchmark(args.data, args.cache_dir, args.vision, args.search_head), args.json)
        return 0
    real = real_data(args.data, args.cache_dir, args.vision)
    if args.vector == "search":
        real["vectors"] = search_head_vectors(real["embeddings"], args.search_head)
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
