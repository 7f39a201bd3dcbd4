"""Stand-ins for the fetcher and Triton in service tests: every image's bytes come from its base64 `data`, and
Triton answers with prepared RawAnalysis rows."""

from __future__ import annotations

import base64

import numpy as np

from contract.categories_file import load_catalog
from contract.tensors import EMBEDDING_DIM
from gateway.clients.fetch import Fetched, decode_base64
from gateway.clients.triton import RawAnalysis
from gateway.services.analysis import AnalysisStep
from tests.helpers import encode, product_photo

CATALOG = load_catalog()
HEAD = CATALOG.category_head
CLASSES = HEAD.classes if HEAD else ()


class FakeFetcher:
    async def fetch_all(self, images):
        return [decode_base64(image.data, 1 << 30) if image.data else Fetched(None, "fetch_failed") for image in images]


class FakeTriton:
    """Returns one prepared RawAnalysis per file (in order): what the served heads give is in each row."""

    def __init__(self, raws):
        self.raws = raws

    async def analyze(self, files):
        return self.raws[: len(files)]


def one_hot(cls: str, confidence: float) -> np.ndarray:
    probs = np.full(len(CLASSES), (1.0 - confidence) / (len(CLASSES) - 1), np.float32)
    probs[CLASSES.index(cls)] = confidence
    return probs


def unit(seed: int, dim: int = EMBEDDING_DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def raw(
    seed: int,
    probs: np.ndarray | None = None,
    placeholder: float = 0.0,
    embedding=None,
    type_probs=None,
    search_embedding=None,
) -> RawAnalysis:
    """One analysed image; `probs`: the category head's output (None: no category head served); `type_probs`:
    category -> that category's type head output (the served type heads); `search_embedding`: the search head's."""
    thumb = np.asarray(product_photo(128, (20 * seed % 255, 90, 200), seed=seed))
    quality = {"blur": 0.1, "small_object": 0.1, "placeholder": placeholder}
    embedding = unit(seed) if embedding is None else embedding
    raw = RawAnalysis(True, 1000, 1000, thumb, embedding, quality, probs, type_probs or {})
    raw.search_embedding = search_embedding
    return raw


def jpeg_b64(seed: int) -> str:
    return base64.b64encode(encode(product_photo(64, seed=seed))).decode()


def analysis_step(triton: FakeTriton) -> AnalysisStep:
    return AnalysisStep(FakeFetcher(), triton, HEAD)
