"""int8 vs float32 `vision` model (issue #13): both built as the repository builds them
(build_engines.vision.vision_heads + write_vision_onnx), run on the same held-out images through the production
preprocessing (preprocessing.runner.PreprocessRunner), scored with the training modules' own splits and metric code.

    python -m evaluation.vision_precision [--data ../shared/data] [--json out.json]

Reports side by side, per precision:
 1. quality head: the quality.json metrics of the test half (and the calibration half) of training.quality_samples
    (rendered by training.quality_dataset.render_all), training.quality_report.metrics_by_role, the untransformed
    photos flagged, the unseen real placeholder family;
 2. category head: category.json's validation (training.category_head.validation_by_source: images, routing,
    confidence floors, simulated requests) and the out-of-distribution confidence on the real placeholders;
 3. apparel type head: type_apparel.json's validation (training.type_heads.validation_report: accuracy, hero);
 4. the embeddings' cosine(int8, fp32) and each head's top-1 agreement over every evaluated image;
 5. onnxruntime speed of each model file (the serving session options: 2 intra-op threads, no spinning).
Prints markdown tables (metric | fp32 | int8 | delta in points; evaluation.vision_precision_report), writes --json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.tensors import (
    CATEGORY_HEAD_OUTPUT,
    EMBEDDING,
    QUALITY_OUTPUTS,
    QUALITY_SCORES,
    type_probs_output,
)
from evaluation.vision_precision_report import (
    TYPE_CATEGORY,
    committed_reports,
    compare_with_committed,
    markdown_table,
    moved_beyond,
    output_agreement,
    reproduction_note,
    side_tables,
    table_rows,
    top1_agreement,
    verdict,
)
from evaluation.vision_runtime import Analysis, VisionModels
from training.datasets import DEFAULT_DATA, IMAGE_SUFFIXES, CategoryExamples

PRECISIONS = ("fp32", "int8")
SPEED_BATCHES = (8, 32)


# ---------------------------------------------------------------------------------------------- the two models


def build_models(scratch: Path) -> dict[str, Path]:
    """Both vision models, built as build_engines.repository builds them."""
    from build_engines.vision import vision_heads, write_vision_onnx

    heads = vision_heads(scratch)
    paths = {}
    for precision in PRECISIONS:
        work = scratch / precision
        work.mkdir()
        paths[precision] = scratch / f"vision-{precision}.onnx"
        written = write_vision_onnx(paths[precision], heads, None, precision, work)
        if written != precision:
            raise SystemExit(f"asked for a {precision} vision model, got {written}: nothing to compare")
    return paths


# ---------------------------------------------------------------------------------------------- the heads


def quality_reports(models: VisionModels, data: Path, roles: tuple[str, ...], workers: int) -> tuple[dict, Analysis]:
    """quality.json's held-out numbers for each precision, on the samples of `roles` rendered as training renders
    them (training.quality_samples / quality_dataset)."""
    from training.quality_dataset import Dataset, render_all
    from training.quality_model import laplacian_baseline
    from training.quality_report import (
        flag_rates_by_kind,
        metrics_by_role,
        unseen_real_placeholders,
        untransformed_photos,
    )
    from training.quality_samples import build_specs

    specs = [s for s in build_specs(data) if s.role in roles]
    metas: list[dict] = []

    def rendered() -> Iterator[np.ndarray]:
        for encoded, meta in render_all(specs, workers):
            metas.append(meta)
            yield encoded

    analysis = models.analyse(rendered())
    if not analysis.valid.all():
        raise SystemExit(f"{int((~analysis.valid).sum())} rendered samples did not decode")
    nan_or = lambda value: np.nan if value is None else value  # noqa: E731
    labels = np.array([[nan_or(m["labels"][h]) for h in QUALITY_OUTPUTS] for m in metas], np.float32)
    sigma = np.array([nan_or(m["sigma_work"]) for m in metas], np.float32)
    area = np.array([nan_or(m["area"]) for m in metas], np.float32)
    classical = laplacian_baseline(analysis.features)
    reports = {}
    for precision in PRECISIONS:
        out = analysis.outputs[precision]
        ds = Dataset(specs, out[EMBEDDING.name], analysis.features, labels, sigma, area, analysis.sizes)
        scores = out[QUALITY_SCORES.name]
        reports[precision] = {
            "metrics": metrics_by_role(ds, scores, classical),
            "test_flag_rates_by_kind": flag_rates_by_kind(ds, scores),
            "untransformed_test_photos": untransformed_photos(ds, scores, classical),
            "unseen_real_placeholders": unseen_real_placeholders(ds, scores),
        }
    return reports, analysis


def category_validation(data: Path) -> CategoryExamples:
    """The category head's validation images (training.datasets.development_data, its own split)."""
    from training.category_head import required_head_config
    from training.datasets import development_data

    every = development_data(data / "grocery", data / "catalog" / "manifest.csv", required_head_config().classes)
    keep = [i for i, held_out in enumerate(every.validation) if held_out]
    return CategoryExamples(*([values[i] for i in keep] for values in every.__dict__.values()))


def category_reports(examples: CategoryExamples, probabilities: dict[str, np.ndarray], ood: dict) -> dict:
    """category.json's validation section (all, per source) and its out-of-distribution check, per precision."""
    from training.category_head import required_head_config, validation_by_source

    head_config = required_head_config()
    labels = np.array([head_config.classes.index(c) for c in examples.classes])
    reports = {}
    for precision in PRECISIONS:
        rows = np.arange(len(labels))
        reports[precision] = validation_by_source(head_config, examples, labels, probabilities[precision], rows)
        confidence = ood[precision].max(axis=1)
        reports[precision]["out_of_distribution"] = {
            "images": int(len(confidence)),
            "max_confidence": [round(float(c), 3) for c in confidence],
            "trusted_share": round(float((confidence >= head_config.min_confidence).mean()), 4),
        }
    return reports


def type_examples(data: Path):
    """(examples, types, labels, validation rows, learned types) of the apparel type head (training.type_heads)."""
    from contract.categories_file import load_catalog
    from training.datasets import types_from_manifest
    from training.heads import learned_classes
    from training.splits import is_validation

    types = load_catalog().get(TYPE_CATEGORY).types
    examples = types_from_manifest(data / "catalog" / "manifest.csv")
    labels = np.array([types.index(t) for t in examples.types])
    validation = np.array([is_validation(g) for g in examples.groups])
    _, trained = learned_classes(labels, np.flatnonzero(~validation), len(types))
    return examples, types, labels, np.flatnonzero(validation), trained


def type_reports(data: Path, probabilities_of) -> dict:
    """type_apparel.json's validation section per precision; `probabilities_of(precision, paths)` gives the rows."""
    from contract.categories_file import load_catalog
    from training.type_heads import validation_report

    examples, types, labels, val_rows, trained = type_examples(data)
    paths = [examples.paths[i] for i in val_rows]
    products = [examples.products[i] for i in val_rows]  # one per validation row, as training.type_heads passes them
    hero = load_catalog().get(TYPE_CATEGORY).hero
    return {
        p: validation_report(types, trained, labels[val_rows], probabilities_of(p, paths), products, hero)
        for p in PRECISIONS
    }


# ---------------------------------------------------------------------------------------------- agreement, speed


def agreement(analyses: list[Analysis]) -> dict:
    """cosine(int8, fp32) of the embeddings and each head's agreement over every valid evaluated image."""
    joined = {
        p: {name: np.concatenate([a.outputs[p][name][a.valid] for a in analyses]) for name in analyses[0].outputs[p]}
        for p in PRECISIONS
    }
    return output_agreement(joined["fp32"], joined["int8"])


def images_per_second(session, feeds: dict[str, np.ndarray], batch: int, seconds: float) -> float:
    feeds = {name: np.ascontiguousarray(np.resize(value, (batch, *value.shape[1:]))) for name, value in feeds.items()}
    for _ in range(3):  # warm-up: the arena and the kernels' first runs
        session.run(None, feeds)
    runs, started = 0, time.perf_counter()
    while runs < 5 or time.perf_counter() - started < seconds:
        session.run(None, feeds)
        runs += 1
    return round(runs * batch / (time.perf_counter() - started), 1)


def speed(models: VisionModels, seconds: float) -> dict:
    """Images/s of each model file at each batch, one precision after the other, on real preprocessed images."""
    return {
        p: {
            "file_mb": round(models.paths[p].stat().st_size / 1e6, 1),
            **{
                f"batch_{b}_images_per_s": images_per_second(models.sessions[p], models.sample_feeds, b, seconds)
                for b in SPEED_BATCHES
            },
        }
        for p in PRECISIONS
    }


# ---------------------------------------------------------------------------------------------- the run


def analyse_files(models: VisionModels, paths: list[Path]) -> tuple[Analysis, dict[Path, int]]:
    """Each file once (the type head's validation photos are also category validation photos)."""
    unique = list(dict.fromkeys(paths))
    analysis = models.analyse(np.fromfile(p, dtype=np.uint8) for p in unique)
    if not analysis.valid.all():
        bad = [str(unique[i]) for i in np.flatnonzero(~analysis.valid)]
        raise SystemExit(f"undecodable evaluation images: {bad[:5]}")
    return analysis, {p: i for i, p in enumerate(unique)}


def evaluate(data: Path, roles: tuple[str, ...], workers: int, speed_seconds: float) -> dict:
    """Build both models, run every evaluation on both, time each model file."""
    timings, started = {}, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imgsel-vision-precision-") as scratch:
        models = VisionModels(build_models(Path(scratch)))
        timings["build_s"] = round(time.perf_counter() - started, 1)

        category = category_validation(data)
        examples, _, _, type_rows, _ = type_examples(data)
        ood = sorted(p for p in (data / "placeholders").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files, row_of = analyse_files(models, [*category.paths, *(examples.paths[i] for i in type_rows), *ood])

        def probabilities(precision: str, output: str, paths: list[Path]) -> np.ndarray:
            return files.outputs[precision][output][[row_of[p] for p in paths]]

        category_probabilities = {p: probabilities(p, CATEGORY_HEAD_OUTPUT, category.paths) for p in PRECISIONS}
        ood_probabilities = {p: probabilities(p, CATEGORY_HEAD_OUTPUT, ood) for p in PRECISIONS}
        category_report = category_reports(category, category_probabilities, ood_probabilities)
        type_output, type_paths = type_probs_output(TYPE_CATEGORY), [examples.paths[i] for i in type_rows]
        type_report = type_reports(data, lambda p, paths: probabilities(p, type_output, paths))
        own_validation = {  # each head's top-1 agreement on the images it is evaluated on
            CATEGORY_HEAD_OUTPUT: top1_agreement(*category_probabilities.values()),
            type_output: top1_agreement(*(probabilities(p, type_output, type_paths) for p in PRECISIONS)),
        }
        timings["files_s"] = round(time.perf_counter() - started - timings["build_s"], 1)

        quality_report, rendered = quality_reports(models, data, roles, workers)
        timings["quality_s"] = round(time.perf_counter() - started - sum(timings.values()), 1)
        speeds = speed(models, speed_seconds)
        timings["speed_s"] = round(time.perf_counter() - started - sum(timings.values()), 1)
    reports = {
        p: {"quality": quality_report[p], "category": category_report[p], f"type_{TYPE_CATEGORY}": type_report[p]}
        for p in PRECISIONS
    }
    counts = {"files": int(len(files.valid)), "rendered_quality_samples": int(len(rendered.valid)), "roles": roles}
    return {
        "reports": reports,
        "agreement": {**agreement([files, rendered]), "top1_on_own_validation": own_validation},
        "speed": speeds,
        "images": counts,
        "timings": timings,
    }


def machine() -> str:
    import onnxruntime

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    cores, system = len(os.sched_getaffinity(0)), f"{platform.system()} {platform.release()}"
    return f"{cpu}, {cores} cores, {system}, onnxruntime {onnxruntime.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="development data root (../shared/data)")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the quality samples")
    parser.add_argument("--no-calibration", action="store_true", help="quality: render the test half only")
    parser.add_argument("--speed-seconds", type=float, default=5.0, help="timed seconds per model and batch")
    args = parser.parse_args(argv)
    if not (args.data / "catalog" / "manifest.csv").is_file():
        print(f"no development data under {args.data}", file=sys.stderr)
        return 2
    roles = ("test",) if args.no_calibration else ("test", "calibration")
    result = evaluate(args.data, roles, args.workers, args.speed_seconds)
    rows = table_rows(result["reports"])
    result.update(
        command=" ".join(["python -m evaluation.vision_precision", *(argv if argv is not None else sys.argv[1:])]),
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        machine=machine(),
        table=[
            {"metric": r.metric, "fp32": r.fp32, "int8": r.int8, "delta_points": r.delta, "in_models_md": r.on_card}
            for r in rows
        ],
        moved_beyond_limit=[r.metric for r in moved_beyond([r for r in rows if r.on_card])],
        fp32_vs_committed=compare_with_committed(rows, committed_reports(HEADS_DIR)),
    )
    print(
        "Metrics quoted in MODELS.md:",
        markdown_table([r for r in rows if r.on_card]),
        "Also measured (not quoted in MODELS.md):",
        markdown_table([r for r in rows if not r.on_card]),
        side_tables(result["agreement"], result["speed"]),
        verdict(rows),
        sep="\n\n",
    )
    print(reproduction_note(result["fp32_vs_committed"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
