"""Pure arithmetic of the backfill: how one product's image set changed, a sample run's figures, and the workers and
Triton replicas (GPUs) a catalog needs by a deadline. Plain data in, plain data out."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

DROPPED_STATUSES = ("rejected", "error")


@dataclass(frozen=True)
class Change:
    dropped: int  # images rejected, failed, or cut by max_images
    duplicates: int  # images merged into another as duplicates
    hero_changed: bool  # the first selected image is not the first image the suppliers sent (or none is selected)

    @property
    def changed(self) -> bool:
        return self.dropped > 0 or self.duplicates > 0 or self.hero_changed


def image_set_change(input_ids: list[str], statuses: dict[str, str], selected: list[str]) -> Change:
    """How curation changed a product's images: `statuses` by image id (selected, rejected, duplicate, error),
    `selected` in page order; images the cap cut are `rejected` (over_limit) in the verdicts."""
    dropped = sum(statuses[i] in DROPPED_STATUSES for i in input_ids)
    duplicates = sum(statuses[i] == "duplicate" for i in input_ids)
    hero_changed = not selected or not input_ids or selected[0] != input_ids[0]
    return Change(dropped, duplicates, hero_changed)


@dataclass(frozen=True)
class WorkerTime:
    worker: str
    products: int
    images: int
    busy_s: float  # sum of the worker's batch wall times


@dataclass(frozen=True)
class SampleFigures:
    products: int
    images_per_product_mean: float
    images_per_product_median: float
    images_per_product_p90: float
    changed_share: float
    dropped_share: float
    duplicates_share: float
    hero_changed_share: float
    wall_s: float
    products_per_s: float  # the whole run (all workers, all replicas)
    images_per_s: float
    products_per_s_per_worker: float  # mean over workers of products / busy time
    images_per_s_per_worker: float
    triton_replicas: int
    products_per_s_per_replica: float
    images_per_s_per_replica: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def sample_figures(
    images: list[int], changes: list[Change], workers: list[WorkerTime], wall_s: float, triton_replicas: int
) -> SampleFigures:
    """The sample's figures: `images` and `changes` per product, `workers` their busy time, `wall_s` the run's."""
    n = len(images)
    if n == 0 or wall_s <= 0:
        raise ValueError("the sample processed no product: nothing to measure")
    total_images = sum(images)
    busy = [w for w in workers if w.busy_s > 0]
    per_worker = statistics.fmean(w.products / w.busy_s for w in busy) if busy else 0.0
    per_worker_images = statistics.fmean(w.images / w.busy_s for w in busy) if busy else 0.0
    return SampleFigures(
        products=n,
        images_per_product_mean=total_images / n,
        images_per_product_median=float(statistics.median(images)),
        images_per_product_p90=float(percentile(images, 0.9)),
        changed_share=sum(c.changed for c in changes) / n,
        dropped_share=sum(c.dropped > 0 for c in changes) / n,
        duplicates_share=sum(c.duplicates > 0 for c in changes) / n,
        hero_changed_share=sum(c.hero_changed for c in changes) / n,
        wall_s=wall_s,
        products_per_s=n / wall_s,
        images_per_s=total_images / wall_s,
        products_per_s_per_worker=per_worker,
        images_per_s_per_worker=per_worker_images,
        triton_replicas=triton_replicas,
        products_per_s_per_replica=n / wall_s / triton_replicas,
        images_per_s_per_replica=total_images / wall_s / triton_replicas,
    )


@dataclass(frozen=True)
class Capacity:
    products: int
    deadline_h: float
    needed_products_per_s: float
    workers: int
    triton_replicas: int
    steps: list[str]  # the arithmetic, one line per step


def capacity(products: int, deadline_h: float, figures: SampleFigures) -> Capacity:
    """Workers and Triton replicas for `products` within `deadline_h` hours at the sample's rates (each replica one
    GPU on the gpu profile). Rates scale linearly only while neither side starves the other: the sample's per-worker
    rate was measured with its replica count, and the per-replica rate with its worker count."""
    if products <= 0 or deadline_h <= 0:
        raise ValueError("catalog size and deadline must be positive")
    if figures.products_per_s_per_worker <= 0:
        raise ValueError("the sample has no worker throughput")
    seconds = deadline_h * 3600
    needed = products / seconds
    workers = math.ceil(needed / figures.products_per_s_per_worker)
    replicas = math.ceil(needed / figures.products_per_s_per_replica)
    steps = [
        f"needed rate = {products:,} products / ({deadline_h:g} h x 3600 s) = {needed:.2f} products/s",
        f"workers = ceil({needed:.2f} / {figures.products_per_s_per_worker:.3f} products/s per worker) = {workers}",
        f"Triton replicas = ceil({needed:.2f} / {figures.products_per_s_per_replica:.3f} products/s per replica)"
        f" = {replicas}",
        f"images = {products:,} x {figures.images_per_product_mean:.2f} per product"
        f" = {products * figures.images_per_product_mean:,.0f}",
    ]
    return Capacity(products, deadline_h, needed, workers, replicas, steps)
