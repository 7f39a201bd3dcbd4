"""The backfill job's driver: read the manifest, skip what is done (same inputs, same versions), run the rest through
Ray Data (`map_batches` over an actor pool of BackfillWorker), and for the index build bulk-load the embeddings into
the state store's partitions afterwards.

Local: `ray.init` starts a private Ray on this machine (`--cpus`, no dashboard, usage stats off). Cluster: with
RAY_ADDRESS set (a KubeRay RayJob sets it) the job joins that cluster; manifest and output may be object-store URIs.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from backfill.manifest import Product
from backfill.results import done_keys, part_files, read_parts
from backfill.versions import Versions, categories_version, model_version, result_key
from backfill.worker import BackfillWorker, JobConfig
from gateway.settings import PROJECT_ROOT, Settings
from gateway.stores.search_bulk import load_partition

log = logging.getLogger("imgsel.backfill")
MODES = ("curate", "index")
# A local raylet on a loaded 2-core CI machine once missed Ray's fixed 30 s registration window (2026-12-03); the
# driver shuts the half-started node down and starts again before it gives up, and says what the raylet logged.
LOCAL_RAY_ATTEMPTS = 3


@dataclass
class JobReport:
    mode: str
    run_id: str
    products: int  # in the manifest (or the sample)
    skipped: int  # already done with the same inputs and versions
    done: int
    dead_letter: int
    images: int  # of the products processed in this run
    wall_s: float
    partitions: dict[str, int] = field(default_factory=dict)  # index build: images per loaded partition

    @property
    def products_per_s(self) -> float:
        return (self.done + self.dead_letter) / self.wall_s if self.wall_s > 0 else 0.0


def start_ray(cpus: int | None) -> None:
    """Join RAY_ADDRESS's cluster, or start a private local Ray (no dashboard, no usage stats) whose workers import
    this checkout."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-operator progress and stats: the report says it
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
        return
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    for attempt in range(1, LOCAL_RAY_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}},
            )
            return
        except Exception as error:  # Ray raises a bare Exception when its raylet does not register in time
            tail = raylet_log_tail()
            ray.shutdown()  # reaps the half-started GCS and raylet before the next try
            if attempt == LOCAL_RAY_ATTEMPTS:
                raise RuntimeError(f"local Ray did not start in {attempt} attempts: {error}\n{tail}") from error
            log.warning("local Ray did not start (attempt %d of %d): %s\n%s", attempt, LOCAL_RAY_ATTEMPTS, error, tail)


def raylet_log_tail(lines: int = 20) -> str:
    """The last lines of the newest local Ray session's raylet logs: why a raylet did not register, if it said."""
    logs = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "session_latest" / "logs"
    tails = []
    for name in ("raylet.err", "raylet.out"):
        try:
            text = (logs / name).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        tails.append(f"--- {logs / name}\n" + "\n".join(text))
    return "\n".join(tails) or f"(no raylet logs under {logs})"


def pending(products: list[Product], keys: dict[str, str], done: set[str]) -> list[dict]:
    return [{"key": keys[p.product_id], "product": p.to_json()} for p in products if keys[p.product_id] not in done]


def run(
    products: list[Product],
    output: str,
    mode: str,
    versions: Versions,
    settings: Settings,
    workers: int = 2,
    batch_size: int = 8,
    concurrency: int = 4,
    worker_cpus: float = 1.0,
    attempts: int = 4,
    backoff_s: float = 1.0,
) -> JobReport:
    """Process every product not done yet; for `index`, then load every current embedding into the search index."""
    import ray.data

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    keys = {p.product_id: result_key(p.fingerprint(), versions, mode) for p in products}
    todo = pending(products, keys, done_keys(f"{output}/{mode}"))
    config = JobConfig(mode, output, versions, run_id, settings, concurrency, attempts, backoff_s)
    statuses: Counter[str] = Counter()
    images = 0
    started = time.perf_counter()
    if todo:
        # Blocks are units of scheduling (batches form inside them): enough to spread over the workers, not one per
        # batch of a million-product run.
        blocks = max(1, min(len(todo) // batch_size, 64 * workers))
        dataset = ray.data.from_items(todo, override_num_blocks=blocks)
        results = dataset.map_batches(
            BackfillWorker,
            fn_constructor_args=(config,),
            batch_size=batch_size,
            concurrency=workers,
            num_cpus=worker_cpus,
            batch_format="numpy",
        )
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            statuses.update(str(s) for s in batch["status"])
            images += int(sum(batch["images"]))
    report = JobReport(
        mode,
        run_id,
        len(products),
        len(products) - len(todo),
        statuses["done"],
        statuses["dead_letter"],
        images,
        time.perf_counter() - started,
    )
    if mode == "index":
        report.partitions = load_index(output, set(keys.values()), settings.database_url.get_secret_value())
    return report


def load_index(output: str, keys: set[str], database_url: str) -> dict[str, int]:
    """Bulk-load the embeddings of the manifest's current results (`keys`), partition by partition, streaming each
    part file once per partition (memory: one part at a time)."""
    table = read_parts(f"{output}/index", ["key", "partitions"])
    if table is None:
        return {}
    names = sorted({name for key, row in zip(table["key"].to_pylist(), table["partitions"].to_pylist())
                    if key in keys for name in row})  # fmt: skip
    filesystem, paths = part_files(f"{output}/index")

    def rows(name: str):
        import pyarrow.parquet as pq

        for path in paths:
            part = pq.read_table(path, filesystem=filesystem).to_pylist()
            for row in part:
                if row["key"] not in keys:
                    continue
                for image_id, partition, embedding in zip(row["image_ids"], row["partitions"], row["embeddings"]):
                    if partition == name:
                        yield row["product_id"], image_id, embedding

    return {name: load_partition(database_url, name, rows(name)) for name in names}


def default_versions(settings: Settings, given_model_version: str | None = None) -> Versions:
    """The served models' version (from the model repository, or given: a cluster's Triton image tag or digest)
    and the categories file's."""
    categories = Path(settings.categories_file) if settings.categories_file else None
    model = given_model_version or model_version(Path(settings.model_repository))
    return Versions(model, categories_version(categories))
