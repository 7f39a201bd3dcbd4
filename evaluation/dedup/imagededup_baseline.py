"""imagededup's PHash on the labelled near-duplicate pairs, scored like every other baseline in evaluation.dedup.

    python -m evaluation.dedup.imagededup_baseline --pairs DIR [DIR ...] [--min-precision 0.993]

imagededup 0.3.3 cannot live in the project's venv: it imports its CNN module (torchvision) even for PHash, and PyPI
torchvision does not import beside the project's CPU torch 2.13 wheel. Run this module with a side venv instead:

    python3.11 -m venv /tmp/idd-venv
    /tmp/idd-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 imagededup   # torch/torchvision from local wheels
    /tmp/idd-venv/bin/python -m evaluation.dedup.imagededup_baseline --pairs P/catalog P/grocery

Its CNN method cannot run offline: it downloads MobileNetV3 weights from the internet when constructed, which this
script reports instead of a number. Pairs, thresholds (precision-first, same rule and tolerance) and 5-fold CV come
from evaluation.dedup, so the row is directly comparable with the table `evaluate` prints.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from evaluation.dedup.evaluate import pairs_per_second
from evaluation.dedup.metrics import DEFAULT_MIN_PRECISION, DEFAULT_RECALL_TOLERANCE, Rule, best_threshold
from evaluation.dedup.pairset import load_pairs
from evaluation.dedup.tuning import cv_single
from gateway.hashing import hamming


def phash_signatures(files: list[Path]) -> tuple[np.ndarray, float]:
    """imagededup PHash of every file as uint64, and the seconds it took (decode included, as imagededup does it)."""
    from imagededup.methods import PHash

    method = PHash(verbose=False)
    started = time.perf_counter()
    hashes = [int(method.encode_image(image_file=str(path)), 16) for path in files]
    return np.array(hashes, dtype=np.uint64), time.perf_counter() - started


def cnn_status() -> str:
    try:
        from imagededup.methods import CNN

        CNN(verbose=False)
    except Exception as error:  # no network: the weight download fails
        return f"unavailable offline: constructing imagededup CNN raised {type(error).__name__} ({str(error)[:120]})"
    return "constructed (not scored by this script)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, nargs="+", required=True)
    parser.add_argument("--min-precision", type=float, default=DEFAULT_MIN_PRECISION)
    parser.add_argument("--recall-tolerance", type=float, default=DEFAULT_RECALL_TOLERANCE)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    rule = Rule(args.min_precision, args.recall_tolerance)
    pairs = load_pairs(args.pairs)
    hashes, seconds = phash_signatures(pairs.files)
    distances = hamming(hashes[pairs.a], hashes[pairs.b])
    single = best_threshold(distances, pairs.labels, *rule)
    cv = cv_single(distances, pairs, rule, args.folds)
    m = single.metrics
    pairs_s = pairs_per_second(lambda: hamming(hashes[pairs.a], hashes[pairs.b]), len(pairs))
    note = "" if single.met else " (target not reached)"
    print(
        f"{len(pairs)} pairs, {int(pairs.labels.sum())} duplicates, {len(pairs.files)} images; rule: {rule.describe()}"
    )
    print("| method | threshold | precision | recall | F1 | CV precision | CV recall | pairs/s | images hashed/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| imagededup PHash{note} | {single.threshold:g} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | "
        f"{cv.precision:.3f} | {cv.recall:.3f} | {pairs_s:,.0f} | {len(pairs.files) / seconds:.0f} |"
    )
    print(f"imagededup CNN: {cnn_status()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
