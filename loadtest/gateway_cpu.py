"""CPU of the gateway's own per-request work outside the HTTP and gRPC plumbing (issue #13): the hashes of each
thumbnail and the category vote's read of the exemplar store, each beside the form it replaced, in the same run.

    python -m loadtest.gateway_cpu [--thumbnails 200] [--repeats 5] [--exemplars 11] [--calls 300]

- compute_hashes (gateway.hashing) on Triton-like thumbnails: loadtest.products.benchmark_images (catalog photos or
  synthetic ones, 800x800 JPEGs) through the cpu preprocess model's own decode and thumbnail
  (preprocessing.runner.PreprocessRunner) when DALI is importable, else decoded with PIL and squashed to 128x128
  (bilinear). Process CPU ms per image, the best of `--repeats` passes, beside the straightforward form the tests pin
  it to (tests/gateway/hashing/reference.py), and whether both gave the same hashes and histograms.
- ExemplarStore.recent, the vote's read (`--exemplars` rows of halfvec(1280), the VoteRule default 11), on a ring of
  64 products in a scratch database (IMGSEL_DATABASE_URL's server, else an embedded one; evaluation.search_scale):
  wall and process CPU ms per call over `--calls` calls, beside the same query read in text form (the vectors parsed
  number by number in Python), and whether both gave the same array.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from contract.tensors import THUMB
from gateway.hashing import compute_hashes
from gateway.stores.exemplars import RECENT_QUERY, ExemplarStore
from loadtest.products import benchmark_images
from tests.gateway.hashing import reference

THUMB_SIDE = 128


def thumbnails(count: int) -> tuple[list[np.ndarray], str]:
    files, data_note = benchmark_images(count)
    try:
        from preprocessing.runner import PreprocessRunner
    except ImportError:  # no DALI: PIL's decode and a bilinear squash, close to the model's thumbnail
        thumbs = [
            np.asarray(Image.open(io.BytesIO(f)).convert("RGB").resize((THUMB_SIDE,) * 2, Image.Resampling.BILINEAR))
            for f in files
        ]
        return thumbs, f"{data_note}; PIL thumbnails (no DALI)"
    runner = PreprocessRunner(max_batch=16)
    thumbs = []
    for start in range(0, len(files), 16):
        batch = [np.frombuffer(f, np.uint8) for f in files[start : start + 16]]
        thumbs += list(runner.run(batch)[THUMB.name])
    return thumbs, f"{data_note}; thumbnails from PreprocessRunner"


def cpu_ms_per_item(functions: dict, items: list, repeats: int) -> dict[str, float]:
    """Process CPU ms per item of each function, the best of `repeats` passes, the functions' passes interleaved so
    that other load on a shared machine weighs on all of them alike."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.process_time()
            for item in items:
                fn(item)
            best[name] = min(best[name], time.process_time() - start)
    return {name: 1000 * seconds / len(items) for name, seconds in best.items()}


def same_hashes(thumbs: list[np.ndarray]) -> bool:
    for thumb in thumbs:
        fast, plain = compute_hashes(thumb), reference.compute_hashes(thumb)
        if (fast.phash, fast.dhash_edge, fast.hsv_hist.tobytes()) != (
            plain.phash,
            plain.dhash_edge,
            plain.hsv_hist.tobytes(),
        ):
            return False
    return True


async def recent_as_text(store: ExemplarStore, category: str, k: int, exclude_product: str) -> np.ndarray:
    """ExemplarStore.recent's query with its results in text form, as the store read them before issue #13."""
    async with store.database.transaction() as db:
        cursor = await db.execute(RECENT_QUERY, (category, exclude_product, k))
        rows = await cursor.fetchall()
    return np.stack([row[0].to_numpy() for row in rows]).astype(np.float32)


async def time_calls(call, calls: int) -> tuple[float, float, np.ndarray]:
    result = await call()  # warm: pool connection, prepared statement
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        result = await call()
    return 1000 * (time.perf_counter() - wall) / calls, 1000 * (time.process_time() - cpu) / calls, result


async def measure_recent(url: str, exemplars: int, calls: int) -> dict:
    from evaluation.search_scale import bench_database

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(64, 1280)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with bench_database(url) as database:
        store = ExemplarStore(database, capacity=256, per_product=2)
        for p, vector in enumerate(vectors):
            await store.add("apparel", f"p{p}", [(f"p{p}-hero", vector)])
        binary = await time_calls(lambda: store.recent("apparel", exemplars, exclude_product="p3"), calls)
        text = await time_calls(lambda: recent_as_text(store, "apparel", exemplars, "p3"), calls)
    return {"binary": binary[:2], "text": text[:2], "same": binary[2].tobytes() == text[2].tobytes()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thumbnails", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--exemplars", type=int, default=11)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)

    from evaluation.search_scale import database_server, scratch_database

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    thumbs, note = thumbnails(args.thumbnails)
    print(f"\ncompute_hashes, {len(thumbs)} thumbnails ({note}), CPU ms per image, best of {args.repeats}:")
    timings = cpu_ms_per_item({"served": compute_hashes, "plain": reference.compute_hashes}, thumbs, args.repeats)
    print(f"  as served:            {timings['served']:.3f}")
    print(f"  straightforward form: {timings['plain']:.3f}")
    print(f"  same hashes and histograms: {'yes' if same_hashes(thumbs) else 'NO'}")

    with tempfile.TemporaryDirectory(prefix="imgsel-gateway-cpu-") as tmp, database_server(Path(tmp)) as server:
        with scratch_database(server) as url:
            result = asyncio.run(measure_recent(url, args.exemplars, args.calls))
    print(f"\nExemplarStore.recent, {args.exemplars} x halfvec(1280), {args.calls} calls, ms per call (wall / CPU):")
    print("  binary (as served):   {:.3f} / {:.3f}".format(*result["binary"]))
    print("  text (before):        {:.3f} / {:.3f}".format(*result["text"]))
    print(f"  same array: {'yes' if result['same'] else 'NO'}")


if __name__ == "__main__":
    main()
