"""Learned quality heads: blur, small_object and placeholder scores from the backbone embedding and the classical
quality features, trained on synthetic degradations of real product photos and on rendered placeholders.

    python -m training.quality_heads [--data ../shared/data] [--min-precision 0.99]

Writes build_engines/heads/quality.onnx (inputs EMBEDDING [1280] and QUALITY_FEATURES [2], output QUALITY_SCORES
[3] in contract.tensors.QUALITY_OUTPUTS order) and quality.json (data, label rules, seeds, split, thresholds,
metrics). The per-head decision thresholds are chosen on held-out calibration data, stored in quality.json and baked
into the ONNX output, so a served score of 0.5 is the chosen operating point (categories.toml compares to 0.5).

Data (../shared/data): catalog photos (Magento sample data) and grocery iconic images (Grocery Store Dataset) with
synthetic crops, Gaussian and motion blur, shrinking into white space and onto scenes; rendered "no image"
placeholders and the real ones of placeholders/. Split by source: catalog style / grocery product, with the salted
hash of training.splits.is_validation; the validation groups are halved again (training.splits.role_of) into a
calibration half (thresholds) and a test half (every reported number). One family of real placeholders is never
trained on (unseen-placeholder generalisation).

The steps, one module each: the samples (training.quality_samples), the rendered and embedded dataset, cached under
.cache/quality_heads/ (training.quality_dataset), the model and its training (training.quality_model), the operating
points (training.quality_calibration), the report (training.quality_report) and the downscaling study
(training.downscaling_study).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from build_engines.artifacts import HEADS_DIR
from contract.tensors import QUALITY_OUTPUTS
from training.datasets import DEFAULT_DATA
from training.downscaling_study import downscaling_study
from training.quality_calibration import MIN_PRECISION, calibrate
from training.quality_dataset import CACHE_DIR, Dataset, build_dataset
from training.quality_model import QualityHead, SplitQualityHead, export, laplacian_baseline, predict, train
from training.quality_report import (
    blur_by_sigma,
    description,
    flag_rates_by_kind,
    latency,
    metrics_by_role,
    unseen_real_placeholders,
    untransformed_photos,
)
from training.quality_samples import PHOTO_KINDS, build_specs

# What the blur and small_object heads' network learns from (quality_model.SplitQualityHead): the photo kinds and the
# placeholders they were designed with (named, not sliced: later placeholder kinds train the placeholder network only);
# the placeholder head's own network learns from every kind.
CORE_KINDS = PHOTO_KINDS + ("ph_text", "ph_glyph", "ph_box", "ph_real")


def fit(ds: Dataset, kinds: tuple[str, ...] | None, min_precision: float) -> QualityHead:
    """A head trained on the training half's samples of `kinds` (None: all), calibrated on the same kinds of the
    calibration half."""
    train_rows, calib_rows = ds.rows("train", kinds), ds.rows("calibration", kinds)
    head = train(ds.embeddings[train_rows], ds.features[train_rows], ds.labels[train_rows])
    calibrate(head, ds.embeddings[calib_rows], ds.features[calib_rows], ds.labels[calib_rows], min_precision)
    return head


def run(
    data: Path, out_dir: Path, cache_dir: Path = CACHE_DIR, workers: int = 2, min_precision: float = MIN_PRECISION
) -> dict:
    """Build the dataset, train on the training half, calibrate on the calibration half, report on the test half,
    export quality.onnx and write quality.json."""
    specs = build_specs(data)
    print(f"{len(specs)} samples; embedding through the DALI runner + backbone (cached in {cache_dir})", flush=True)
    ds = build_dataset(specs, cache_dir, workers=workers)
    # blur and small_object: one network on the kinds that carry their labels; placeholder: its own network on
    # every sample (quality_model.SplitQualityHead says why).
    base = fit(ds, CORE_KINDS, min_precision)
    own = fit(ds, None, min_precision)
    head = SplitQualityHead(base, own, ("placeholder",))
    train_rows = ds.rows("train", CORE_KINDS)
    offsets = head.offset.tolist()
    thresholds = {name: 1 / (1 + math.exp(-o)) for name, o in zip(QUALITY_OUTPUTS, offsets)}

    scores = predict(head, ds.embeddings, ds.features)  # calibrated: 0.5 is each head's decision point
    classical = laplacian_baseline(ds.features)
    report = {
        **description(data, ds, offsets, thresholds, min_precision),
        "metrics": metrics_by_role(ds, scores, classical),
        "test_flag_rates_by_kind": flag_rates_by_kind(ds, scores),
        "test_blur_by_sigma": blur_by_sigma(ds, scores, classical),
        "untransformed_test_photos": untransformed_photos(ds, scores, classical),
        "unseen_real_placeholders": unseen_real_placeholders(ds, scores),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "quality.onnx"
    parity = export(head, path)
    report["downscaling_study"] = downscaling_study(ds, train_rows, head)
    report["onnx_parity_max_abs_error"] = parity
    report["latency_cpu_onnxruntime_1_thread"] = latency(path)
    (out_dir / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="development data root (../shared/data)")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--cache", type=Path, default=CACHE_DIR)
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the synthetic images")
    parser.add_argument(
        "--min-precision",
        type=float,
        default=MIN_PRECISION,
        help="operating point of every head: the highest calibration recall at this precision (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "catalog" / "manifest.csv").is_file():
        print(f"no development data under {args.data}: keeping the committed quality head")
        return 2
    report = run(args.data, args.out, args.cache, args.workers, args.min_precision)
    print(json.dumps({k: report[k] for k in ("thresholds", "metrics", "unseen_real_placeholders")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
