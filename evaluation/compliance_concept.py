"""A compliance check trained and measured end to end on real development photos, with a concept the project renders
(training.concepts: a red warning sticker, the kind of badge a marketplace bans, or overlaid marketing text: banners,
badges, price tags, watermarks, captions), since no labelled adult, violent or badge data ships with the project.

    python -m evaluation.compliance_concept [--concept sticker|text_overlay] [--data ../shared/data] [--per-class 150]
        [--json PATH]

- Sources: studio catalog photos (catalog/), in-store grocery photos (grocery/train: real packaging, many red labels),
  and the photos of ten other shops (products/). Each photo is assigned to training or to the unseen pool by a hash
  of its name; no photo is used both ways. Every photo, clean or rendered on, is re-encoded as JPEG q90 alike.
- Training (training.compliance_head.train, its defaults): `--per-class` stickered photos and as many clean ones from
  catalog + grocery, 30% held out; the card's held-out precision/recall/ROC-AUC.
- Unseen photos: the false-positive rate on every clean unseen photo, per source (products/ is a shop the head never
  saw), and the recall on the same unseen photos with the concept rendered on them, per kind of the concept.
- Cost: the head's time per image alone (onnxruntime, batch 64); in the served vision graph it is one 1280x1 matrix
  product per image.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from tools.json_output import emit
from training import compliance_head
from training.concepts import CONCEPTS
from training.embeddings import analyse_encoded

SOURCES = {
    "catalog": lambda data: sorted((data / "catalog").glob("*.jpg")),
    "grocery": lambda data: sorted((data / "grocery" / "train").rglob("*.jpg")),
    "products": lambda data: sorted(p for p in (data / "products").iterdir() if p.suffix in (".jpg", ".png", ".webp")),
}
TRAINING_SOURCES = ("catalog", "grocery")


def in_training_pool(path: Path) -> bool:
    return int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) % 2 == 0


def encoded(path: Path, render=None, seed: int = 0) -> np.ndarray:
    """The photo re-encoded as JPEG q90, with the concept rendered on it (`render(image, rng)`) or clean: both classes
    go through the same encoder, so the head cannot learn the encoding instead of the concept."""
    with Image.open(path) as image:
        picture = image.convert("RGB")
    if render is not None:
        picture = render(picture, np.random.default_rng(seed))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def embed(paths: list[Path], render=None) -> np.ndarray:
    result = analyse_encoded(encoded(p, render, k) for k, p in enumerate(paths))
    return result.embeddings[result.valid]


def pick(paths: list[Path], count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.permutation(len(paths))[:count])]


def head_latency_ms(head: compliance_head.ComplianceHead, dim: int) -> float:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        path = compliance_head.export_onnx(head, Path(scratch) / "head.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        batch = np.random.default_rng(0).normal(size=(64, dim)).astype(np.float32)
        session.run(None, {"EMBEDDING": batch})
        start = time.perf_counter()
        for _ in range(200):
            session.run(None, {"EMBEDDING": batch})
        return (time.perf_counter() - start) / (200 * 64) * 1000


def evaluate(data: Path, per_class: int, concept: str = "sticker") -> dict:
    pools = {name: list_paths(data) for name, list_paths in SOURCES.items()}
    training = [p for name in TRAINING_SOURCES for p in pools[name] if in_training_pool(p)]
    chosen = pick(training, 2 * per_class, seed=0)
    order = np.random.default_rng(0).permutation(len(chosen))  # both classes from every source alike
    positives = [chosen[i] for i in order[:per_class]]
    negatives = [chosen[i] for i in order[per_class:]]
    render, kinds = CONCEPTS[concept]
    head = compliance_head.train(embed(positives, render), embed(negatives), concept)
    unseen = {}
    for name, paths in pools.items():
        rest = [p for p in paths if not in_training_pool(p)]
        rest = pick(rest, min(len(rest), 300), seed=1)
        clean = head.scores(embed(rest).astype(np.float32))
        unseen[name] = {
            "photos": len(rest),
            "false_positive_rate": round(float((clean >= 0.5).mean()), 4),
            "false_positives": int((clean >= 0.5).sum()),
            "recall_by_kind": {
                kind: round(
                    float((head.scores(embed(rest, partial(render, kind=kind)).astype(np.float32)) >= 0.5).mean()), 4
                )
                for kind in kinds
            },
        }
    return {
        "concept": concept,
        "data": str(data),
        "training": {"positives": len(positives), "negatives": len(negatives), "sources": list(TRAINING_SOURCES)},
        "card": head.card,
        "unseen": unseen,
        "head_ms_per_image": round(head_latency_ms(head, head.weights.size), 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--concept", choices=sorted(CONCEPTS), default="sticker")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "catalog").is_dir():
        raise SystemExit(f"{args.data}: no development data (catalog/, grocery/, products/)")
    report = evaluate(args.data, args.per_class, args.concept)
    emit(report, args.json, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
