"""Signatures of the pair images: ours exactly as production computes them, imagehash's, and the CNN embedding."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from contract.categories import DedupThresholds
from contract.tensors import ORIG_SIZE, PIXELS, THUMB, VALID
from evaluation.dedup.pairset import PairSet
from gateway.hashing import (
    HashVectors,
    ImageHashes,
    chi2_pairs,
    colour_distances,
    compute_hashes,
    framed_signals,
    hamming,
    tone_residuals,
    within_thresholds,
)


@dataclass
class ProductionSignatures:
    phash: np.ndarray  # (n,) uint64
    dhash_edge: np.ndarray
    hsv_hist: np.ndarray  # (n, bins)
    tone: np.ndarray  # (n, 32, 32, 3) uint8 tone thumbnails (gateway.hashing.tone)
    images: list[ImageHashes]  # every image's hashes with its thumbnail and size (the framing rescue)
    embeddings: np.ndarray | None  # (n, 1280) L2-normalised, or None without the CNN
    seconds: dict[str, float]  # read_s, dali_s, hash_s, cnn_s


def production_signatures(files: Sequence[Path], with_cnn: bool, batch: int = 64) -> ProductionSignatures:
    """Our hashes exactly as the gateway gets them (DALI preprocess on CPU -> THUMB -> compute_hashes), and the
    CNN embedding of the same preprocess output (PIXELS -> EfficientNet-Lite0 backbone, torch on CPU)."""
    from preprocessing.runner import PreprocessRunner  # DALI: imported only when signatures are computed

    seconds = {"read_s": 0.0, "dali_s": 0.0, "hash_s": 0.0, "cnn_s": 0.0}
    model = None
    if with_cnn:
        import torch

        from build_engines.backbone import load_backbone

        torch.set_num_threads(os.cpu_count() or 1)
        model = load_backbone()
    runner = PreprocessRunner(max_batch=batch)
    hashes, tones, embeddings = [], [], []
    for start in range(0, len(files), batch):
        started = time.perf_counter()
        encoded = [np.fromfile(path, dtype=np.uint8) for path in files[start : start + batch]]
        seconds["read_s"] += time.perf_counter() - started
        started = time.perf_counter()
        outputs = runner.run(encoded)
        seconds["dali_s"] += time.perf_counter() - started
        if not outputs[VALID.name].all():
            bad = [str(files[start + k]) for k in np.flatnonzero(~outputs[VALID.name].ravel())]
            raise ValueError(f"DALI could not decode: {bad}")
        started = time.perf_counter()
        # copies: the runner may reuse its output arrays for the next batch
        batch_hashes = [
            compute_hashes(np.array(thumb), (int(width), int(height)))
            for thumb, (height, width) in zip(outputs[THUMB.name], outputs[ORIG_SIZE.name])
        ]
        tones.extend(h.tone for h in batch_hashes)
        hashes.extend(batch_hashes)
        seconds["hash_s"] += time.perf_counter() - started
        if model is not None:
            import torch

            started = time.perf_counter()
            with torch.inference_mode():
                embeddings.append(model(torch.from_numpy(outputs[PIXELS.name])).numpy())
            seconds["cnn_s"] += time.perf_counter() - started
    return ProductionSignatures(
        phash=np.array([h.phash for h in hashes], dtype=np.uint64),
        dhash_edge=np.array([h.dhash_edge for h in hashes], dtype=np.uint64),
        hsv_hist=np.stack([h.hsv_hist for h in hashes]),
        tone=np.stack(tones),
        images=hashes,
        embeddings=np.concatenate(embeddings) if embeddings else None,
        seconds=seconds,
    )


IMAGEHASH_METHODS = ("phash", "dhash", "whash", "colorhash")


def imagehash_signatures(files: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """imagehash's own functions on the full decoded image, as a user of the library would call them."""
    import imagehash

    functions = {
        "phash": imagehash.phash,
        "dhash": imagehash.dhash,
        "whash": imagehash.whash,
        "colorhash": imagehash.colorhash,  # 14 bins x 3 bits = 42 bits
    }
    seconds = dict.fromkeys(["decode_s", *functions], 0.0)
    values: dict[str, list[int]] = {name: [] for name in functions}
    for path in files:
        started = time.perf_counter()
        with Image.open(path) as file:
            img = file.convert("RGB")
        seconds["decode_s"] += time.perf_counter() - started
        for name, function in functions.items():
            started = time.perf_counter()
            bits = function(img).hash.ravel()
            seconds[name] += time.perf_counter() - started
            values[name].append(int("".join("1" if bit else "0" for bit in bits), 2))
    return {name: np.array(v, dtype=np.uint64) for name, v in values.items()}, seconds


IMAGEDEDUP_NOTE = (
    "needs torchvision even for PHash (imagededup 0.3.3 imports its CNN module), and PyPI torchvision does not import "
    "beside the CPU torch 2.13 wheel; score its PHash from a side venv with "
    "`python -m evaluation.dedup.imagededup_baseline`"
)


def imagededup_status() -> str | None:
    """None when imagededup imports, else why it cannot be used here."""
    try:
        import imagededup.methods  # noqa: F401
    except Exception as error:  # ImportError, or a broken torchvision raising anything at import
        return f"not installable here: {IMAGEDEDUP_NOTE} ({type(error).__name__})"
    return None


def our_distances(
    pairs: PairSet, sig: ProductionSignatures, t: DedupThresholds
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pHash and dHash-edge Hamming distances and the colour signal of every pair: the chi-square, 0 where `t`'s tone
    rescue holds (gateway.hashing.colour_distances, applied whatever the chi-square threshold, so a grid of
    chi-square thresholds sees the rescue at each of them). Where `t` has the framing rescue on, a pair `t` rejects
    that its framing rescue accepts gets its window's distances (gateway.hashing.framed_signals): exactly the
    rule's decision at `t`; a grid of other thresholds sees those pairs at their window's distances."""
    tone_t = replace(t, hsv_chi2_max=0.0)
    chi2 = chi2_pairs(sig.hsv_hist, pairs.a, pairs.b)
    distances = (
        hamming(sig.phash[pairs.a], sig.phash[pairs.b]).astype(np.float64),
        hamming(sig.dhash_edge[pairs.a], sig.dhash_edge[pairs.b]).astype(np.float64),
        colour_distances(chi2, lambda k: tone_residuals(sig.tone[pairs.a[k]], sig.tone[pairs.b[k]]), tone_t),
    )
    if t.framing_min_share > 0:
        rejected = np.flatnonzero(~within_thresholds(t, *distances))
        vectors = HashVectors.of(sig.phash, sig.dhash_edge, sig.hsv_hist, sig.tone, sig.images)
        phash_distance, edge_distance, framed_chi2, residual = framed_signals(
            vectors, pairs.a[rejected], pairs.b[rejected], t
        )
        framed = (phash_distance, edge_distance, colour_distances(framed_chi2, residual, tone_t))
        rescued = within_thresholds(t, *framed)
        for values, framed_values in zip(distances, framed):
            values[rejected[rescued]] = framed_values[rescued]
    return distances
