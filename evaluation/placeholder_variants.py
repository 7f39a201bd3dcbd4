"""Known platform placeholders as suppliers re-serve them (issue #15): each real "no image" picture of
`placeholders/` and `products/placeholders/` (28) in `--variants` seeded variants (evaluation.placeholder_data.variant:
border crop, resize 0.4-1.0, brightness and contrast +-20%, white padding, PNG or JPEG q35-95), through the
production preprocessing and a served vision model. Reports the learned head's recall (score >= 0.5), the library's
under the served rule (gateway.decisions.placeholders.LibraryRule, the originals on white as the library) and either,
overall and per placeholder, and one-factor probes of every original (JPEG q35, brightness 0.8 / 1.2, contrast 0.8,
6% border crop, 15% white padding) that say which change the head does not survive.

The head trained on variants of the placeholders whose licence lets them train shipped weights (MODELS.md), so this
is a figure for known designs in new variants; nopCommerce and Smartstore are never trained on.

    python -m evaluation.placeholder_variants [--vision model_repository/analyze/1/vision.onnx] [--variants 16]
        [--no-tone] [--json F]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from build_engines.repository import vision_onnx
from contract.tensors import QUALITY_OUTPUTS, QUALITY_SCORES
from evaluation.placeholder_data import cropped, on_white, padded, variant
from evaluation.placeholder_mechanisms import library_distances
from evaluation.product_acceptance import placeholder_files
from gateway.decisions.placeholders import LibraryRule
from training.datasets import DEFAULT_DATA
from training.image_codec import encode_image

HEAD_THRESHOLD = 0.5  # every served score is 0.5 at its threshold
SEED = 99


PROBES: dict[str, Callable[[Image.Image], np.ndarray]] = {
    "jpeg q35": lambda im: encode_image(im, "JPEG", 35),
    "brightness 0.8": lambda im: encode_image(ImageEnhance.Brightness(im).enhance(0.8), "PNG"),
    "brightness 1.2": lambda im: encode_image(ImageEnhance.Brightness(im).enhance(1.2), "PNG"),
    "contrast 0.8": lambda im: encode_image(ImageEnhance.Contrast(im).enhance(0.8), "PNG"),
    "crop 6%": lambda im: encode_image(cropped(im, 0.06), "PNG"),
    "pad 15%": lambda im: encode_image(padded(im, 0.15), "PNG"),
}


def main(argv: list[str] | None = None) -> int:
    from evaluation.vision_runtime import SERVED, analyse_with_vision

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vision", type=Path, default=vision_onnx(Path("model_repository")))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", type=int, default=16, help="per placeholder")
    parser.add_argument(
        "--no-tone",
        action="store_true",
        help="variants without the brightness/contrast step (resized, cropped, padded, re-encoded only)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    placeholders = placeholder_files(args.data)
    if not placeholders:
        raise SystemExit(f"{args.data}: no placeholder folders")
    originals = [on_white(Image.open(p)) for p in placeholders]
    library = [encode_image(image, "PNG") for image in originals]
    variants = [
        variant(Image.open(p), np.random.default_rng([SEED, i, v]), tone=not args.no_tone)
        for i, p in enumerate(placeholders)
        for v in range(args.variants)
    ]
    probes = [probe(image) for image in originals for probe in PROBES.values()]
    analysis = analyse_with_vision(args.vision, [*library, *variants, *probes], with_thumbs=True)
    scores = analysis.outputs[SERVED][QUALITY_SCORES.name][:, QUALITY_OUTPUTS.index("placeholder")]
    n_library, n_variants = len(library), len(variants)
    is_library = np.arange(len(scores)) < n_library
    distances = library_distances(analysis.thumbs[: n_library + n_variants], is_library[: n_library + n_variants])
    head = scores[n_library : n_library + n_variants]
    head_fires = head >= HEAD_THRESHOLD
    library_fires = LibraryRule().stands(distances[n_library:], head)

    def rates(rows: slice) -> dict:
        return {
            "head": round(float(head_fires[rows].mean()), 3),
            "library": round(float(library_fires[rows].mean()), 3),
            "either": round(float((head_fires | library_fires)[rows].mean()), 3),
        }

    per = {p.name: rates(slice(i * args.variants, (i + 1) * args.variants)) for i, p in enumerate(placeholders)}
    probe_scores = scores[n_library + n_variants :].reshape(len(placeholders), len(PROBES))
    report = {
        "vision": str(args.vision),
        "tone": not args.no_tone,
        "placeholders": len(placeholders),
        "variants": n_variants,
        "all": rates(slice(None)),
        "per_placeholder": per,
        "missed_by_both_library_distances": sorted(distances[n_library:][~(head_fires | library_fires)].tolist()),
        "probes": {
            p.name: dict(zip(PROBES, (round(float(s), 3) for s in row))) for p, row in zip(placeholders, probe_scores)
        },
    }
    print(json.dumps({k: report[k] for k in ("placeholders", "variants", "all")}))
    for name, row in per.items():
        if row["either"] < 1.0 or row["head"] < 1.0:
            print(f"  {name:36s} {row}  probes {report['probes'][name]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
