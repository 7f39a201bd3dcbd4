"""python -m backfill run|plan: the catalog backfill and index build on Ray Data, and capacity planning from a sample.

    python -m backfill run MANIFEST --output DIR [--mode curate|index] [--workers 2] [--local-stack]
    python -m backfill plan MANIFEST --category apparel --sample 50 --catalog-products 2000000 --deadline-hours 24

Settings (Triton, database, fetch limits, categories file, model repository) are the gateway's IMGSEL_ variables.
`--local-stack` starts what is missing of the embedded stack (backfill.local); without it the job uses
IMGSEL_TRITON_GRPC_URL and IMGSEL_DATABASE_URL as given (a cluster). Prints a JSON report on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from contextlib import nullcontext, redirect_stdout
from dataclasses import asdict

from backfill import job
from backfill.manifest import ManifestError, Product, read_manifest
from backfill.plan import plan_report
from gateway.settings import Settings


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("manifest", help="JSONL, CSV or Parquet (local path or object-store URI)")
    common.add_argument("--workers", type=int, default=2, help="Ray actors, each with its own Triton client")
    common.add_argument("--batch-size", type=int, default=8, help="products per batch (a batch is one part file)")
    common.add_argument("--concurrency", type=int, default=4, help="products in flight per worker")
    common.add_argument("--cpus", type=int, default=None, help="local Ray: CPUs to offer (default: all)")
    common.add_argument("--worker-cpus", type=float, default=1.0, help="CPUs Ray reserves per worker")
    common.add_argument("--attempts", type=int, default=4, help="tries per product before its dead letter")
    common.add_argument("--backoff-s", type=float, default=1.0, help="first retry delay, doubled per try")
    common.add_argument("--model-version", default=None, help="instead of hashing IMGSEL_MODEL_REPOSITORY")
    common.add_argument("--local-stack", action="store_true", help="start the embedded database and Triton if absent")
    top = argparse.ArgumentParser(prog="python -m backfill", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="curate every product, or build the search index")
    run.add_argument("--output", required=True, help="results folder or object-store URI")
    run.add_argument("--mode", choices=job.MODES, default="curate")
    plan = commands.add_parser("plan", parents=[common], help="measure a sample, size a catalog run")
    plan.add_argument("--category", default=None, help="sample products of this manifest category (default: any)")
    plan.add_argument("--sample", type=int, default=50, help="products in the sample")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--catalog-products", type=int, required=True, help="products in the whole catalog")
    plan.add_argument("--deadline-hours", type=float, required=True)
    plan.add_argument("--triton-replicas", type=int, default=1, help="Triton replicas the sample ran against")
    plan.add_argument("--output", default=None, help="where the sample's results go (default: a temporary folder)")
    return top


def sample(products: list[Product], category: str | None, size: int, seed: int) -> list[Product]:
    pool = [p for p in products if category is None or p.category == category]
    if not pool:
        raise ManifestError(f"no product of category {category!r} in the manifest")
    return random.Random(seed).sample(pool, min(size, len(pool)))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    try:
        products = read_manifest(args.manifest)
        if args.command == "plan":
            products = sample(products, args.category, args.sample, args.seed)
    except (ManifestError, OSError) as error:
        print(f"manifest: {error}", file=sys.stderr)
        return 2
    stack = nullcontext(settings)
    if args.local_stack:
        from backfill.local import local_stack

        stack = local_stack(settings)
    # stdout carries the JSON report only: the local stack's server logs go to stderr.
    with redirect_stdout(sys.stderr), stack as ready, tempfile.TemporaryDirectory(prefix="imgsel-plan-") as scratch:
        versions = job.default_versions(ready, args.model_version)
        job.start_ray(args.cpus)
        output = args.output or scratch
        mode = args.mode if args.command == "run" else "curate"
        report = job.run(
            products,
            output,
            mode,
            versions,
            ready,
            args.workers,
            args.batch_size,
            args.concurrency,
            args.worker_cpus,
            args.attempts,
            args.backoff_s,
        )
        result = {"versions": asdict(versions), "output": output, **asdict(report)}
        result["products_per_s"] = round(report.products_per_s, 3)
        if args.command == "plan":
            try:
                result["plan"] = plan_report(output, report, args.triton_replicas, args.catalog_products,
                                             args.deadline_hours)  # fmt: skip
            except ValueError as error:  # nothing measured (all done before, all dead letters), or a bad size
                print(f"plan: {error}", file=sys.stderr)
                return 2
    print(json.dumps(result, indent=2))
    return 1 if report.dead_letter else 0


if __name__ == "__main__":
    sys.exit(main())
