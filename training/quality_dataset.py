"""The quality heads' dataset: every sample rendered (in worker processes) and run through the production path
(DALI runner + backbone), with its labels. Cached twice under the cache directory: the whole dataset by a key of
everything that shapes it (`cache_key`), and each sample's analysis by the sha256 of its encoded bytes
(training.embedding_cache.AnalysisStore), so a change to one generator re-embeds only the samples whose pixels changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from contract.tensors import QUALITY_OUTPUTS
from preprocessing import foreground
from training import hard_negatives, image_codec, placeholder_synthesis, quality_data, quality_samples
from training.embedding_cache import AnalysisStore, content_digest
from training.embeddings import BATCH
from training.quality_samples import SEED, Spec, render

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_ROOT / ".cache" / "quality_heads"
# The code that decides a sample's pixels and labels: any change to it renders the dataset again.
GENERATOR_MODULES = (quality_data, placeholder_synthesis, hard_negatives, quality_samples, image_codec, foreground)
ARRAYS = ("embeddings", "features", "labels", "sigma_work", "area", "sizes")


@dataclass
class Dataset:
    specs: list[Spec]
    embeddings: np.ndarray  # [n, 1280]
    features: np.ndarray  # [n, 2] raw QUALITY_FEATURES
    labels: np.ndarray  # [n, 3] 1/0, NaN = not labelled
    sigma_work: np.ndarray  # [n] NaN for placeholders
    area: np.ndarray  # [n] NaN for placeholders
    sizes: np.ndarray  # [n, 2] height, width as decoded (ORIG_SIZE)

    def rows(self, role: str | None = None, kinds: tuple[str, ...] | None = None) -> np.ndarray:
        keep = [
            i
            for i, s in enumerate(self.specs)
            if (role is None or s.role == role) and (kinds is None or s.kind in kinds)
        ]
        return np.array(keep, dtype=int)


def cache_key(specs: list[Spec]) -> str:
    """Changes with anything that changes the samples' pixels or labels: the generator code, the specs, the seed, and
    the backbone and the preprocessing."""
    from training.embedding_cache import analysis_fingerprint

    digest = hashlib.sha256(f"seed={SEED} analysis={analysis_fingerprint()}".encode())
    for module in GENERATOR_MODULES:
        digest.update(Path(module.__file__).read_bytes())
    for spec in specs:
        digest.update(json.dumps(asdict(spec), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def render_all(specs: list[Spec], workers: int = 1, window: int = 64):
    """render() of every spec, in order; with `workers` > 1 in worker processes, at most two windows in flight
    (the images are rendered while the previous window runs through the preprocess model and the backbone)."""
    if workers <= 1:
        fonts = placeholder_synthesis.font_paths()
        yield from (render(spec, fonts) for spec in specs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        windows = [specs[i : i + window] for i in range(0, len(specs), window)]
        pending = [pool.map(render, w) for w in windows[:2]]
        for index in range(len(windows)):
            results = list(pending.pop(0))
            if index + 2 < len(windows):
                pending.append(pool.map(render, windows[index + 2]))
            yield from results


def build_dataset(specs: list[Spec], cache_dir: Path = CACHE_DIR, verbose: bool = True, workers: int = 2) -> Dataset:
    """Render every sample and run the new ones through the DALI runner and the backbone (production path)."""
    cache = cache_dir / f"dataset-{cache_key(specs)}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return Dataset(specs, *(stored[k] for k in ARRAYS))
    store = AnalysisStore(cache_dir, "samples", ("embeddings", "features", "sizes"), batch_size=BATCH)
    labels, sigma, area, digests = [], [], [], []
    pending: list[tuple[str, np.ndarray]] = []
    started = time.monotonic()
    for i, (data, meta) in enumerate(render_all(specs, workers)):
        labels.append([np.nan if meta["labels"][h] is None else meta["labels"][h] for h in QUALITY_OUTPUTS])
        sigma.append(np.nan if meta["sigma_work"] is None else meta["sigma_work"])
        area.append(np.nan if meta["area"] is None else meta["area"])
        digest = content_digest(data)
        digests.append(digest)
        if digest not in store and all(digest != d for d, _ in pending):
            pending.append((digest, data))
            if len(pending) == BATCH:
                analyse_new(store, pending)
        if verbose and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(specs)} samples, {time.monotonic() - started:.0f} s", flush=True)
    if pending:
        analyse_new(store, pending)
    dataset = Dataset(
        specs,
        store.column("embeddings", digests).astype(np.float32),
        store.column("features", digests).astype(np.float32),
        np.array(labels, np.float32),
        np.array(sigma, np.float32),
        np.array(area, np.float32),
        store.column("sizes", digests).astype(np.int32),
    )
    store.save(keep=set(digests))
    np.savez(cache, **{k: getattr(dataset, k) for k in ARRAYS})
    return dataset


def analyse_new(store: AnalysisStore, pending: list[tuple[str, np.ndarray]]) -> None:
    """Embed one batch of new samples into the store (and empty `pending`); every generated sample must decode."""
    out = store.add([digest for digest, _ in pending], [data for _, data in pending])
    for row, (digest, _) in enumerate(pending):
        if not out.valid[row]:
            raise SystemExit(f"a generated sample the preprocess model could not decode ({digest})")
    pending.clear()
