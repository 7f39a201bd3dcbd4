"""Random inputs for the heads' tests (unit embeddings and raw quality features)."""

from __future__ import annotations

import numpy as np

from contract.tensors import EMBEDDING_DIM


def random_embeddings(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_quality_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit embeddings, raw [Laplacian variance, object area fraction] features)."""
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    embedding /= np.linalg.norm(embedding, axis=1, keepdims=True)
    features = np.stack([rng.uniform(0, 3000, n), rng.uniform(0, 1, n)], axis=1).astype(np.float32)
    return embedding, features
