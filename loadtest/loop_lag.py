"""How long one request's pure decisions hold the gateway's event loop (issue #13): a /v1/dedup (or a large
/v1/select) of N photos runs its duplicate clustering while a ticker coroutine, waking every millisecond, measures how
late the loop lets it run: what every other request on that gateway (and /healthz) waits meanwhile.

The photos are `make bench`'s catalog photos through the DALI preprocessing once (their THUMB, as Triton returns it),
hashed as the gateway hashes; the decision is `gateway.decisions.duplicates.dedup_groups` with the shipped default
thresholds (the framing rescue on), run the way `gateway.services.curation` runs it (`decide`), once inline on the
loop and once as the gateway does now.

    python -m loadtest.loop_lag [--images 8 64 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from contract.categories_file import load_catalog
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.duplicates import dedup_groups
from gateway.hashing import compute_hashes
from gateway.services.curation import decide
from loadtest.dedup_cost import thumbnails
from loadtest.products import SIDE, benchmark_images


def analyses(thumbs: list[np.ndarray], count: int) -> list[ImageAnalysis]:
    """`count` images (the photos repeated with a different id where count exceeds them: exact copies, which the
    rule takes without the rescue)."""
    return [
        ImageAnalysis(
            id=f"img-{k}",
            supplier=None,
            index=k,
            ok=True,
            width=SIDE,
            height=SIDE,
            hashes=compute_hashes(thumbs[k % len(thumbs)], (SIDE, SIDE)),
        )
        for k in range(count)
    ]


async def lag_while(work, tick_s: float = 0.001) -> tuple[float, float]:
    """(seconds the work took, the ticker's largest lateness in seconds) while `work` (a coroutine) runs."""
    done = asyncio.Event()
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            due = time.perf_counter() + tick_s
            await asyncio.sleep(tick_s)
            worst = max(worst, time.perf_counter() - due)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)  # the ticker is running
    start = time.perf_counter()
    await work
    took = time.perf_counter() - start
    done.set()
    await tick
    return took, worst


async def measure(thumbs: list[np.ndarray], counts: list[int], repeats: int) -> list[dict]:
    thresholds = load_catalog().default.dedup
    rows = []
    for count in counts:
        for label, inline in (("inline on the loop", True), ("as served (decide)", False)):
            runs = []
            for _ in range(repeats):
                images = analyses(thumbs, count)  # fresh: the rescue's caches live as long as one request's
                if inline:

                    async def on_loop(images=images):
                        return dedup_groups(images, thresholds)

                    runs.append(await lag_while(on_loop()))
                else:
                    runs.append(await lag_while(decide(dedup_groups, images, thresholds)))
            took, worst = np.median(np.array(runs), axis=0)
            rows.append({"images": count, "how": label, "took_ms": took * 1e3, "worst_lag_ms": worst * 1e3})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[8, 64, 200])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files, note = benchmark_images(64)
    thumbs = thumbnails(files)
    try:
        import uvloop  # what uvicorn runs the gateway on when it is installed

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    rows = run(measure(thumbs, args.images, args.repeats))
    print(f"{note}; dedup_groups, default thresholds; medians of {args.repeats} runs")
    print("| images | run | decision ms | worst lateness of a 1 ms ticker (ms) |")
    print("| ---: | --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['images']} | {r['how']} | {r['took_ms']:.1f} | {r['worst_lag_ms']:.1f} |")


if __name__ == "__main__":
    main()
