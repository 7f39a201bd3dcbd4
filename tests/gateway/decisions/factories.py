"""Analysed images for the decision tests: distinct random pictures unless hashes are given."""

from __future__ import annotations

import numpy as np

from contract.categories_file import load_catalog
from gateway.decisions.analysis import ImageAnalysis
from gateway.hashing import HSV_HIST_BINS, ImageHashes

CATALOG = load_catalog()
APPAREL = CATALOG.get("apparel")
DEDUP = APPAREL.dedup


def picture(k: int) -> ImageHashes:
    """Hashes of the k-th distinct picture: random 64-bit hashes (about 32 bits apart) and its own colour bin."""
    rng = np.random.default_rng(k)
    histogram = np.zeros(HSV_HIST_BINS, np.float32)
    histogram[k % HSV_HIST_BINS] = 1.0
    return ImageHashes(
        phash=int(rng.integers(0, 2**64, dtype=np.uint64)),
        dhash_edge=int(rng.integers(0, 2**64, dtype=np.uint64)),
        hsv_hist=histogram,
    )


def image(
    image_id: str,
    index: int,
    *,
    type: str = "unknown",
    size: tuple[int, int] = (1000, 1000),
    scores: dict[str, float] | None = None,
    hashes: ImageHashes | None = None,
    supplier_priority: int | None = None,
    compliance: dict[str, float] | None = None,
    probabilities: dict[str, float] | None = None,
) -> ImageAnalysis:
    return ImageAnalysis(
        id=image_id,
        supplier="A",
        index=index,
        ok=True,
        width=size[0],
        height=size[1],
        scores={"blur": 0.1} if scores is None else scores,
        type=type,
        type_confidence=None if type == "unknown" else 0.9,
        hashes=picture(index) if hashes is None else hashes,
        supplier_priority=supplier_priority,
        compliance=compliance or {},
        type_probabilities=probabilities,
    )


def failed(image_id: str, index: int, reason: str = "undecodable") -> ImageAnalysis:
    return ImageAnalysis(id=image_id, supplier="B", index=index, ok=False, error_reason=reason)


def ids(items: list[ImageAnalysis]) -> list[str]:
    return [a.id for a in items]
