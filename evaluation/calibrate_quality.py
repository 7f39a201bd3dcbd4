"""Calibration data for the interim classical quality measures (build_engines/classical_quality.json).

    python -m evaluation.calibrate_quality [--images 80]

On real catalog photos (../shared/data/catalog; skipped when absent): the measures of the originals, of Gaussian-
blurred copies (sigma 0.4% and 0.8% of the longer side) and of copies shrunk into white space (object at 1/4 of
the side, i.e. ~6% of the area). Prints percentiles and, at the configured thresholds, the rejection rate of each set.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageFilter

from build_engines.quality import load_params
from contract.tensors import QUALITY_FEATURES
from preprocessing.runner import PreprocessRunner
from training.datasets import DEFAULT_DATA
from training.image_codec import encode_image

CATALOG = DEFAULT_DATA / "catalog"


def shrunk_into_whitespace(image: Image.Image, fraction: float = 0.25) -> Image.Image:
    canvas = Image.new("RGB", image.size, (255, 255, 255))
    small = image.resize((int(image.width * fraction), int(image.height * fraction)), Image.Resampling.LANCZOS)
    canvas.paste(small, ((image.width - small.width) // 2, (image.height - small.height) // 2))
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=80)
    args = parser.parse_args(argv)
    paths = sorted(CATALOG.glob("*.jpg"))
    if not paths:
        print(f"no photos under {CATALOG}: nothing to calibrate on")
        return 0
    paths = paths[:: max(1, len(paths) // args.images)][: args.images]
    originals = [Image.open(p).convert("RGB") for p in paths]
    variants = {
        "original": originals,
        "blur sigma 0.4%": [im.filter(ImageFilter.GaussianBlur(0.004 * max(im.size))) for im in originals],
        "blur sigma 0.8%": [im.filter(ImageFilter.GaussianBlur(0.008 * max(im.size))) for im in originals],
        "shrunk to 1/4 side": [shrunk_into_whitespace(im) for im in originals],
    }
    params = load_params()
    runner = PreprocessRunner(max_batch=64)
    print(f"{len(paths)} photos from {CATALOG}")
    print(
        "| set | log10 Laplacian variance p0/p5/p50/p95 | box area p0/p5/p50/p95 | rejected blurry | rejected small |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, images in variants.items():
        features = np.concatenate(
            [
                runner.run([encode_image(im) for im in images[i : i + 64]])[QUALITY_FEATURES.name]
                for i in range(0, len(images), 64)
            ]
        )
        lap, area = np.log10(features[:, 0] + 1), features[:, 1]
        blurry = np.mean(features[:, 0] < params["blur"].threshold)
        small = np.mean(features[:, 1] < params["small_object"].threshold)
        pct = lambda v: "/".join(f"{x:.2f}" for x in np.percentile(v, [0, 5, 50, 95]))  # noqa: E731
        print(f"| {name} | {pct(lap)} | {pct(area)} | {blurry:.1%} | {small:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
