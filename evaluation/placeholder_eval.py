"""Library matching of known placeholders: recall on transformed variants vs false positives on real photos.

    python -m evaluation.placeholder_eval [--variants 40]

Library: the real placeholders in ../shared/data/placeholders (transparent PNGs, composited on white by the
preprocessing), each by both keys the served library keeps (its content box's pHash and its whole picture's).
Queries: per placeholder, `--variants` seeded random variants (evaluation.placeholder_data.variant: resize 0.4-1.0,
JPEG q 35-95 or PNG, border crop 0-6%, brightness/contrast +-20%, white padding 0-15%). Negatives: every photo in
../shared/data/catalog and the grocery iconic images. Hashes go through the production path (DALI preprocessing ->
128 px thumbnail -> pHash). Prints recall and false-positive rate for each pHash distance threshold.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from contract.tensors import THUMB, VALID
from evaluation.placeholder_data import DATA, variant
from evaluation.placeholder_mechanisms import library_keys
from gateway.hashing import compute_hashes, hamming
from preprocessing.runner import PreprocessRunner
from training.datasets import photo_sources

BATCH = 64


def thumbnails(runner: PreprocessRunner, files: list[np.ndarray]) -> np.ndarray:
    """The thumbnail of every decodable file (undecodable ones are left out)."""
    out = []
    for start in range(0, len(files), BATCH):
        result = runner.run(files[start : start + BATCH])
        out += [t for t, ok in zip(result[THUMB.name], result[VALID.name][:, 0]) if ok]
    return np.array(out)


def phashes(runner: PreprocessRunner, files: list[np.ndarray]) -> np.ndarray:
    """pHash of every decodable file (undecodable ones are left out)."""
    return np.array([compute_hashes(t).phash for t in thumbnails(runner, files)], dtype=np.uint64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    known = sorted((DATA / "placeholders").glob("*.png"))
    if not known:
        print(f"no placeholders under {DATA}: nothing to evaluate")
        return 0
    rng = np.random.default_rng(args.seed)
    runner = PreprocessRunner(max_batch=BATCH)
    library = library_keys(thumbnails(runner, [np.fromfile(p, dtype=np.uint8) for p in known]))
    queries = phashes(runner, [variant(Image.open(p), rng) for p in known for _ in range(args.variants)])
    negatives = phashes(runner, [np.fromfile(s.path, dtype=np.uint8) for s in photo_sources(DATA)])
    nearest_q = np.array([hamming(library, q).min() for q in queries])
    nearest_n = np.array([hamming(library, n).min() for n in negatives])
    print(
        f"library {len(library)} placeholders; {len(queries)} variants; {len(negatives)} real photos "
        f"(catalog + grocery iconic); seed {args.seed}"
    )
    print("| max distance | variant recall | false-positive rate on photos |")
    print("| --- | --- | --- |")
    for threshold in range(4, 21, 2):
        print(
            f"| {threshold} | {np.mean(nearest_q <= threshold):.4f} | {np.mean(nearest_n <= threshold):.4f} "
            f"({int(np.sum(nearest_n <= threshold))}) |"
        )
    print(
        f"closest real photo to any placeholder: {int(nearest_n.min())} bits; "
        f"farthest variant from its nearest placeholder: {int(nearest_q.max())} bits"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
