"""Which grey working copy the blur measure can afford (issue #13): the variance of the Laplacian inside the object
box, measured on copies of different sides and resampling filters, judged alone on the quality heads' held-out blur
samples, beside what each copy costs in the preprocess model.

    python -m evaluation.blur_copy [--data ../shared/data] [--seconds 8]

Samples: the calibration + test halves of training.quality_samples' blur-labelled photo kinds (originals, sharp
crops, soft, Gaussian, motion, sweep, mild full-resolution blur), rendered exactly as the quality dataset renders
them. Two questions per copy: ROC-AUC of the measure alone on all of them, and on the hardest case issue #4 singled
out (originals of >= 1000 px photos against their mild blur, sigma 0.2-0.5 % of the longer side). The heads' own
metrics need the quality head retrained on the chosen copy (training.quality_heads); this study only picks the copy.
Cost: CPU ms per image of the whole preprocess model (PreprocessRunner, 2 DALI threads, batch 8) on the benchmark's
800x800 JPEGs, so the difference between two rows is what the copy saves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from preprocessing.pipeline import SERVED_BLUR_COPY, BlurCopy
from training.downscaling_study import blur_feature
from training.metrics import recall_at_fpr, roc_auc
from training.quality_dataset import render_all
from training.quality_samples import BLURRED_CROP_KINDS, Spec, build_specs

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CANDIDATES = (
    SERVED_BLUR_COPY,
    BlurCopy(512, "linear"),
    BlurCopy(512, "nearest"),
    BlurCopy(384, "antialiased"),
    BlurCopy(384, "nearest"),
)
STUDY_KINDS = ("original", *BLURRED_CROP_KINDS, "mild_blur")
MILD_STUDY_MIN_SIDE = 1000


def held_out_blur_specs(data: Path) -> list[Spec]:
    return [s for s in build_specs(data) if s.role in ("calibration", "test") and s.kind in STUDY_KINDS]


def render_labelled(specs: list[Spec], workers: int) -> tuple[list[np.ndarray], np.ndarray, list[Spec]]:
    """Encoded files and blur labels of the specs whose blur is labelled (the ambiguous band left out)."""
    files, labels, kept = [], [], []
    for spec, (data, meta) in zip(specs, render_all(specs, workers)):
        label = meta["labels"]["blur"]
        if label is not None:
            files.append(data)
            labels.append(int(label))
            kept.append(spec)
    return files, np.array(labels), kept


def preprocess_cpu_ms(copy: BlurCopy, seconds: float) -> float:
    from loadtest.preprocess_speed import benchmark_files, measure
    from preprocessing.runner import PreprocessRunner

    return measure(PreprocessRunner(max_batch=8, blur_copy=copy), benchmark_files()[0], 8, seconds)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing window per copy")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the samples")
    args = parser.parse_args(argv)
    files, truth, specs = render_labelled(held_out_blur_specs(args.data), args.workers)
    kinds = np.array([s.kind for s in specs])
    print(f"{len(files)} blur-labelled held-out samples, {int(truth.sum())} blurry", flush=True)
    rows = []
    for copy in CANDIDATES:
        feature, longer = blur_feature(files, copy)
        score = -np.log1p(feature)  # less Laplacian energy = blurrier
        mild = (longer >= MILD_STUDY_MIN_SIDE) & np.isin(kinds, ("original", "mild_blur"))
        rows.append(
            {
                "copy": copy.label,
                "roc_auc_all": round(roc_auc(score, truth), 4),
                "recall_at_5_percent_fpr_all": round(recall_at_fpr(score, truth), 4),
                "roc_auc_mild_blur_vs_originals": round(roc_auc(score[mild], truth[mild]), 4),
                "mild_samples": int(mild.sum()),
                "preprocess_cpu_ms": round(preprocess_cpu_ms(copy, args.seconds), 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
