"""`plan`: the figures of a sample run (read back from its results) and the capacity a catalog needs. The arithmetic
is backfill.capacity's; this module reads the rows and lays the report out."""

from __future__ import annotations

from dataclasses import asdict

from backfill.capacity import Change, WorkerTime, capacity, sample_figures
from backfill.results import read_parts


def run_rows(output: str, run_id: str) -> list[dict]:
    table = read_parts(f"{output}/curate")
    rows = [] if table is None else [r for r in table.to_pylist() if r["run_id"] == run_id]
    if not rows:
        raise ValueError("the sample run processed no product (all done before, or all dead letters): nothing measured")
    return rows


def worker_times(rows: list[dict]) -> list[WorkerTime]:
    """Per worker: its products and images, and its busy time (each of its batches' wall time once)."""
    by_worker: dict[str, dict] = {}
    for row in rows:
        entry = by_worker.setdefault(row["worker"], {"products": 0, "images": 0, "batches": {}})
        entry["products"] += 1
        entry["images"] += row["images"]
        entry["batches"][row["batch"]] = row["batch_seconds"]
    return [
        WorkerTime(worker, e["products"], e["images"], sum(e["batches"].values())) for worker, e in by_worker.items()
    ]


def processing_window_s(rows: list[dict]) -> float:
    """From the first batch's start to the last batch's end: the run's wall time less Ray's start-up."""
    ends = [row["processed_at"].timestamp() for row in rows]
    starts = [row["processed_at"].timestamp() - row["batch_seconds"] for row in rows]
    return max(ends) - min(starts)


def plan_report(output: str, report, triton_replicas: int, catalog_products: int, deadline_h: float) -> dict:
    rows = run_rows(output, report.run_id)
    changes = [Change(r["dropped"], r["duplicates"], r["hero_changed"]) for r in rows]
    figures = sample_figures(
        [r["images"] for r in rows], changes, worker_times(rows), processing_window_s(rows), triton_replicas
    )
    need = capacity(catalog_products, deadline_h, figures)
    return {
        "sample": {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(figures).items()},
        "capacity": {
            "catalog_products": need.products,
            "deadline_hours": need.deadline_h,
            "needed_products_per_s": round(need.needed_products_per_s, 3),
            "workers": need.workers,
            "triton_replicas": need.triton_replicas,
            "gpus": need.triton_replicas,
            "arithmetic": need.steps,
            "note": "one Triton replica per GPU on the gpu profile; a sample run against the cpu profile sizes cpu "
            "replicas: run `plan` against the gpu Triton to size GPUs",
        },
    }
