"""The analysis step every use case shares: fetch the images, one Triton analyze pass, hashes of the thumbnails
(from Triton where the profile computes them, else here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from contract.categories import CategoryHead
from contract.reasons import UNDECODABLE
from gateway.clients.fetch import Fetcher
from gateway.clients.triton import RawAnalysis
from gateway.decisions.analysis import ImageAnalysis
from gateway.decisions.category import head_width_matches
from gateway.hashing import ImageHashes, compute_hashes
from gateway.schemas import ImageIn
from gateway.timing import HASHING, phase

log = logging.getLogger("imgsel.service")


class AnalyzeClient(Protocol):
    async def analyze(self, files: list[bytes]) -> list[RawAnalysis | None]: ...


@dataclass
class Analyzed:
    analysis: ImageAnalysis
    embedding: np.ndarray | None
    thumb: np.ndarray | None = None  # Triton's 128x128 RGB thumbnail (aspect squashed); None when not analysed
    category_probs: np.ndarray | None = None  # the top-level category head's output, when served
    type_probs: dict[str, np.ndarray] = field(default_factory=dict)  # every served type head's output, by category
    search_embedding: np.ndarray | None = None  # the search head's SEARCH_EMBEDDING, when served


def to_analysis(index: int, image: ImageIn, raw: RawAnalysis | None, reason: str | None) -> Analyzed:
    """One input image's analysis: its fetch failure, an image Triton could not decode, or its measurements."""
    common = dict(id=image.id, supplier=image.supplier, index=index, supplier_priority=image.supplier_priority)
    if reason is not None:
        return Analyzed(ImageAnalysis(ok=False, error_reason=reason, **common), None)
    if raw is None or not raw.valid:
        return Analyzed(ImageAnalysis(ok=False, error_reason=UNDECODABLE, **common), None)
    analysis = ImageAnalysis(
        ok=True,
        width=raw.width,
        height=raw.height,
        scores=dict(raw.quality),
        compliance=dict(raw.compliance),
        hashes=_hashes(raw),
        **common,
    )
    return Analyzed(analysis, raw.embedding, raw.thumb, raw.category_probs, raw.type_probs, raw.search_embedding)


def _hashes(raw: RawAnalysis) -> ImageHashes:
    """The image's hashes (the cpu profile's from Triton, else made from THUMB), with the thumbnail and the
    picture's size the tone and framing rescues compare."""
    size = (raw.width, raw.height)
    if raw.hashes is None:
        return compute_hashes(raw.thumb, size)
    return ImageHashes(*raw.hashes, thumb=raw.thumb, size=size)


class AnalysisStep:
    def __init__(self, fetcher: Fetcher, triton: AnalyzeClient, category_head: CategoryHead | None):
        self.fetcher = fetcher
        self.triton = triton
        self.category_head = category_head  # None: no [category_head] in the categories file
        self._warned_head_width = False

    async def analyze(self, images: Sequence[ImageIn]) -> list[Analyzed]:
        """One Analyzed per image, in input order; a failed fetch or decode fails that image only."""
        fetched = await self.fetcher.fetch_all(images)
        usable = [i for i, f in enumerate(fetched) if f.data is not None]
        raws = await self.triton.analyze([fetched[i].data for i in usable])
        raw_by_index = dict(zip(usable, raws))

        def analyses() -> list[Analyzed]:
            return [to_analysis(i, image, raw_by_index.get(i), fetched[i].reason) for i, image in enumerate(images)]

        if all(raw is None or raw.hashes is not None for raw in raws):
            return analyses()  # Triton hashed every thumbnail (cpu profile)
        # Hashing here is CPU work (~1.4 ms an image): off the event loop so other requests keep flowing.
        with phase(HASHING):
            return await asyncio.to_thread(analyses)

    def head_output(self, item: Analyzed) -> np.ndarray | None:
        """The item's category-head probabilities when the head is served and its width matches the categories
        file's classes (else None; a width mismatch is logged once, not per image of every request)."""
        head = self.category_head
        if head is None or item.category_probs is None:
            return None
        if not head_width_matches(item.category_probs, head):
            if not self._warned_head_width:
                self._warned_head_width = True
                log.warning(
                    "category head gives %d probabilities but [category_head] lists %d classes: ignoring it (retrain)",
                    len(item.category_probs),
                    len(head.classes),
                )
            return None
        return item.category_probs

    def class_probabilities(self, item: Analyzed) -> dict[str, float] | None:
        """head_output by class name."""
        probs = self.head_output(item)
        if probs is None:
            return None
        return {cls: float(p) for cls, p in zip(self.category_head.classes, probs)}
