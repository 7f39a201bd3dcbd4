"""Library matching of known placeholders: recall on transformed variants vs false positives on real photos.

    python -m evaluation.placeholder_eval [--variants 40]

Library: the real placeholders in ../shared/data/placeholders (transparent PNGs, composited on white by the
preprocessing). Queries: per placeholder, `--variants` seeded random variants (resize 0.4-1.0, JPEG q 35-95 or PNG,
border crop 0-6%, brightness/contrast +-20%, white padding 0-15%). Negatives: every photo in ../shared/data/catalog and
the grocery iconic images. Hashes go through the production path (DALI preprocessing -> 128 px thumbnail -> pHash).
Prints recall and false-positive rate for each pHash distance threshold.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image, ImageEnhance

from gateway.hashing import compute_hashes
from gateway.stores.placeholders import hamming_to_all
from loadtest.products import PROJECT_ROOT
from preprocessing.runner import PreprocessRunner

DATA = PROJECT_ROOT.parent / "shared" / "data"


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def variant(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    image = on_white(image)
    w, h = image.size
    crop = rng.uniform(0, 0.06)
    image = image.crop((int(w * crop), int(h * crop), int(w * (1 - crop)), int(h * (1 - crop))))
    scale = rng.uniform(0.4, 1.0)
    image = image.resize((max(16, int(image.width * scale)), max(16, int(image.height * scale))), Image.LANCZOS)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    pad = int(max(image.size) * rng.uniform(0, 0.15))
    if pad:
        canvas = Image.new("RGB", (image.width + 2 * pad, image.height + 2 * pad), (255, 255, 255))
        canvas.paste(image, (pad, pad))
        image = canvas
    return encode(image, "PNG") if rng.random() < 0.2 else encode(image, "JPEG", int(rng.integers(35, 96)))


def phashes(runner: PreprocessRunner, files: list[np.ndarray]) -> np.ndarray:
    out = []
    for start in range(0, len(files), 64):
        result = runner.run(files[start : start + 64])
        out += [compute_hashes(t).phash if ok else None for t, ok in zip(result["THUMB"], result["VALID"][:, 0])]
    return np.array([h for h in out if h is not None], dtype=np.uint64)


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
    runner = PreprocessRunner(max_batch=64)
    library = phashes(runner, [np.fromfile(p, dtype=np.uint8) for p in known])
    queries = phashes(runner, [variant(Image.open(p), rng) for p in known for _ in range(args.variants)])
    negative_paths = sorted((DATA / "catalog").glob("*.jpg")) + sorted(
        (DATA / "grocery" / "iconic-images-and-descriptions").rglob("*.jpg")
    )
    negatives = phashes(runner, [np.fromfile(p, dtype=np.uint8) for p in negative_paths])
    nearest_q = np.array([hamming_to_all(int(q), library).min() for q in queries])
    nearest_n = np.array([hamming_to_all(int(n), library).min() for n in negatives])
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
