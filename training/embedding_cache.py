"""The embedding caches, one module. Every cache is keyed by `analysis_fingerprint`: the backbone's fingerprint
(build_engines.backbone.backbone_fingerprint) and the preprocessing's (preprocessing.pipeline
.preprocessing_fingerprint), so neither a retrained backbone nor a new blur copy ever serves stale rows.

- `cached_embeddings`: the embeddings (and mirrored copies) of a list of files on disk, one file per (backbone, file
  list), the list identified by each file's resolved path, size and modification time (`file_list_digest`). The
  category head and the search evaluation build the same list (training.datasets.development_data), so they share it.
- `AnalysisStore`: per-image analysis rows (embedding, quality features, thumbnail, ...) by the sha256 of the
  encoded bytes, one file per backbone. For generated images (the quality heads' synthetic samples, the placeholder
  evaluation): a change to one generator re-embeds only the images whose bytes changed, and a content-addressed row
  can never be stale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path(os.environ.get("IMGSEL_EMBEDDING_CACHE", Path(tempfile.gettempdir()) / "imgsel-embeddings"))


def file_list_digest(paths: Sequence[Path], salt: str = "", with_mtime: bool = True) -> str:
    """sha256 (hex) of `salt` and each file's resolved path and size (and mtime): changes when a file is added,
    removed, reordered or rewritten."""
    digest = hashlib.sha256(salt.encode())
    for path in paths:
        stat = path.stat()
        mtime = f":{stat.st_mtime_ns}" if with_mtime else ""
        digest.update(f"{path.resolve()}:{stat.st_size}{mtime}\n".encode())
    return digest.hexdigest()


def analysis_fingerprint() -> str:
    """What an analysed image's rows (embedding, quality features, thumbnail) depend on besides its bytes."""
    from build_engines.backbone import backbone_fingerprint
    from preprocessing.pipeline import preprocessing_fingerprint

    return f"{backbone_fingerprint()}-{preprocessing_fingerprint()}"


def cached_embeddings(paths: list[Path], cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [2n, D] (rows n.. mirrored), valid [n]) through the production path, cached by file list
    (`cache_dir` None: no cache)."""
    from training.embeddings import embed_files

    key = file_list_digest(paths, salt=analysis_fingerprint())[:24]
    cache = None if cache_dir is None else cache_dir / f"category-{key}.npz"  # "category": its first user
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        return stored["embeddings"], stored["valid"]
    embeddings, valid = embed_files(paths, with_flips=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=embeddings, valid=valid)
    return embeddings, valid


def content_digest(data: np.ndarray) -> str:
    """The key of an encoded image in an AnalysisStore."""
    return hashlib.sha256(data.tobytes()).hexdigest()[:32]


class AnalysisStore:
    """Rows of `fields` (attributes of training.embeddings.Analysed: embeddings, features, valid, sizes, thumbs) by
    content digest, in `cache_dir/<name>-<backbone fingerprint>.npz`. `add` runs new images through the preprocess
    model (`batch_size` images per run, `threads` DALI threads) and the backbone, both made on first use."""

    def __init__(self, cache_dir: Path, name: str, fields: tuple[str, ...], batch_size: int = 64, threads: int = 2):
        self.path = cache_dir / f"{name}-{analysis_fingerprint()}.npz"
        self.fields = fields
        self.batch_size, self.threads = batch_size, threads
        self.rows: dict[str, tuple[np.ndarray, ...]] = {}
        self._backbone, self._runner = None, None
        if self.path.is_file():
            with np.load(self.path) as stored:
                arrays = [stored[name] for name in fields]
                for i, digest in enumerate(stored["digests"]):
                    self.rows[str(digest)] = tuple(a[i] for a in arrays)

    def __contains__(self, digest: str) -> bool:
        return digest in self.rows

    def add(self, digests: list[str], files: list[np.ndarray]):
        """Analyse `files` (at most one batch) and store their rows under `digests`; returns the Analysed result."""
        from build_engines.backbone import load_backbone
        from preprocessing.runner import PreprocessRunner
        from training.embeddings import analyse_encoded

        self._backbone = self._backbone or load_backbone()
        self._runner = self._runner or PreprocessRunner(max_batch=self.batch_size, threads=self.threads)
        out = analyse_encoded(
            files, self._backbone, runner=self._runner, batch_size=self.batch_size, with_thumbs="thumbs" in self.fields
        )
        for row, digest in enumerate(digests):
            self.rows[digest] = tuple(getattr(out, name)[row] for name in self.fields)
        return out

    def column(self, name: str, digests: Sequence[str]) -> np.ndarray:
        """One field of the given rows, stacked in their order."""
        index = self.fields.index(name)
        return np.stack([self.rows[d][index] for d in digests])

    def save(self, keep: set[str] | None = None) -> None:
        """Write every row (or only those in `keep`), sorted by digest."""
        digests = sorted(d for d in self.rows if keep is None or d in keep)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self.path, digests=np.array(digests), **{name: self.column(name, digests) for name in self.fields})
