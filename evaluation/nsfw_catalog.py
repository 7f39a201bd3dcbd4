"""The nsfw compliance model (build_engines.nsfw) on the development photos, as served: every photo through the
production preprocessing (its PIXELS) and the wrapped open_nsfw graph, per category of every source.

    python -m evaluation.nsfw_catalog [--data ../shared/data] [--operating-point 0.8] [--json PATH]

The development data holds no adult content, so this measures the false-positive side only: the share of real catalog
photos (apparel codes of catalog/manifest.csv, women's bras/tanks and shorts among them; products/manifest.csv
categories; grocery val photos; the placeholder folder) the check would reject at the default category threshold
(served score >= 0.5, i.e. open_nsfw p >= the operating point), with the highest scores named. Also the model's time
per image in onnxruntime (2 threads, batch 8), the cost the cpu profile would add.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from build_engines.nsfw import DEFAULT_OPERATING_POINT, NSFW_OUTPUT, write_nsfw_onnx
from contract.tensors import PIXELS
from preprocessing.runner import PreprocessRunner
from tools.json_output import emit

BATCH = 32


def labelled_photos(data: Path) -> dict[str, list[Path]]:
    """{"source/category": [paths]} of every development photo with a category."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for source in ("catalog", "products"):
        with open(data / source / "manifest.csv", newline="") as manifest:
            for row in csv.DictReader(manifest):
                groups[f"{source}/{row['category'] or 'none'}"].append(data / source / row["file"])
    groups["grocery/val"] = sorted((data / "grocery" / "val").rglob("*.jpg"))
    groups["placeholders"] = sorted(p for p in (data / "placeholders").rglob("*") if p.suffix in (".jpg", ".png"))
    return dict(groups)


def scores_of(session, runner: PreprocessRunner, paths: list[Path]) -> np.ndarray:
    out = []
    for start in range(0, len(paths), BATCH):
        result = runner.run([np.fromfile(p, dtype=np.uint8) for p in paths[start : start + BATCH]])
        pixels = result[PIXELS.name][result["VALID"][:, 0]]
        if len(pixels):
            out.append(session.run([NSFW_OUTPUT], {PIXELS.name: pixels})[0][:, 0])
    return np.concatenate(out) if out else np.zeros(0)


def ms_per_image(session, threads_note: str) -> dict:
    pixels = np.random.default_rng(0).normal(size=(8, *PIXELS.dims)).astype(np.float32)
    session.run(None, {PIXELS.name: pixels})
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(10):
        session.run(None, {PIXELS.name: pixels})
    return {
        "wall_ms": round((time.perf_counter() - start) / 80 * 1000, 2),
        "cpu_ms": round((time.process_time() - cpu) / 80 * 1000, 2),
        "setting": threads_note,
    }


def evaluate(data: Path, operating_point: float) -> dict:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        path = write_nsfw_onnx(Path(scratch) / "nsfw.onnx", operating_point)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runner = PreprocessRunner(max_batch=BATCH)
        groups, flagged = {}, []
        for name, paths in sorted(labelled_photos(data).items()):
            scores = scores_of(session, runner, paths)
            groups[name] = {
                "photos": int(scores.size),
                "rejected": int((scores >= 0.5).sum()),
                "false_positive_rate": round(float((scores >= 0.5).mean()), 4) if scores.size else None,
                "max_score": round(float(scores.max()), 4) if scores.size else None,
            }
            order = np.argsort(-scores)[:3]
            flagged += [(float(scores[i]), str(paths[i].relative_to(data))) for i in order if scores[i] >= 0.2]
        latency = ms_per_image(session, "onnxruntime CPU, 2 intra-op threads, batch 8")
    total = sum(g["photos"] for g in groups.values())
    rejected = sum(g["rejected"] for g in groups.values())
    return {
        "data": str(data),
        "operating_point": operating_point,
        "photos": total,
        "rejected": rejected,
        "false_positive_rate": round(rejected / total, 4),
        "groups": groups,
        "highest": sorted(flagged, reverse=True)[:10],
        "latency_per_image": latency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--operating-point", type=float, default=DEFAULT_OPERATING_POINT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "catalog" / "manifest.csv").is_file():
        raise SystemExit(f"{args.data}: no development data (catalog/manifest.csv)")
    emit(evaluate(args.data, args.operating_point), args.json, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
