"""Visual search: index catalog images in their top-level category's partition, search by the category cascade,
remove products. The partition rules are in gateway.decisions.search."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from contract.categories import CategoryHead
from contract.reasons import CATEGORY_UNKNOWN, UNDECODABLE
from gateway.decisions.search import (
    IndexPlacement,
    SearchPlan,
    index_placements,
    partition_allowed,
    partition_name,
    search_partitions,
    search_vector,
)
from gateway.schemas import ImageIn, IndexRequest, SearchRequest
from gateway.services.analysis import AnalysisStep, Analyzed
from gateway.services.errors import InvalidField
from gateway.stores.interfaces import Hit, SearchIndexStore

log = logging.getLogger("imgsel.service")


@dataclass(frozen=True)
class Indexed:
    image_id: str
    product_id: str
    placement: IndexPlacement


@dataclass(frozen=True)
class IndexOutcome:
    indexed: list[Indexed]
    failed: list[tuple[str, str]]  # (image id, reason code)


@dataclass(frozen=True)
class SearchOutcome:
    plan: SearchPlan
    probabilities: dict[str, float] | None  # the category head's, when it ran
    hits: list[Hit]


class SearchService:
    def __init__(self, category_head: CategoryHead | None, analysis: AnalysisStep, index: SearchIndexStore):
        self.category_head = category_head
        self.analysis = analysis
        self.index = index
        self._warned_fallback = False

    def _vector(self, result: Analyzed):
        """decisions.search.search_vector of an analysed image; the first fallback to EMBEDDING is logged."""
        if result.search_embedding is None and result.embedding is not None and not self._warned_fallback:
            self._warned_fallback = True
            log.warning("the vision model serves no SEARCH_EMBEDDING (no search head): searching with EMBEDDING")
        return search_vector(result.embedding, result.search_embedding)

    def _requested_partition(self, category: str | None, field: str) -> str | None:
        name = partition_name(category)
        if not partition_allowed(name, self.category_head):
            classes = ", ".join(self.category_head.classes)
            raise InvalidField(field, f"{category!r} is not a top-level category; use one of {classes}")
        return name

    async def index_items(self, request: IndexRequest) -> IndexOutcome:
        """Embed catalog images through the same Triton path as product images and store each in the partition
        decisions.search.index_placements gives it; an image that fails, or has no partition, is reported failed."""
        rows, outcome = await self.embed_items(request)
        if rows:
            await self.index.add(rows)
        return outcome

    async def embed_items(self, request: IndexRequest) -> tuple[list[tuple[str, str, str, np.ndarray]], IndexOutcome]:
        """index_items without the store: the (product_id, image_id, partition, embedding) rows to store and the
        outcome (also the catalog backfill's index build, which bulk-loads the rows itself)."""
        items = request.items
        requested = [self._requested_partition(item.category, f"items.{i}.category") for i, item in enumerate(items)]
        # The items' sources were checked as IndexItemIn (the same rule): not checked again per image.
        images = [ImageIn.model_construct(id=i.image_id, url=i.url, data=i.data, supplier=None) for i in items]
        analyzed = await self.analysis.analyze(images)
        probabilities = [self.analysis.head_output(a) if a.analysis.ok else None for a in analyzed]
        placements = index_placements([item.product_id for item in items], requested, probabilities, self.category_head)
        rows, indexed, failed = [], [], []
        for item, result, placement in zip(items, analyzed, placements):
            vector = self._vector(result)
            if not result.analysis.ok or vector is None:
                failed.append((item.image_id, result.analysis.error_reason or UNDECODABLE))
            elif placement is None:
                failed.append((item.image_id, CATEGORY_UNKNOWN))
            else:
                rows.append((item.product_id, item.image_id, placement.partition, vector))
                indexed.append(Indexed(item.image_id, item.product_id, placement))
        return rows, IndexOutcome(indexed, failed)

    async def search(self, request: SearchRequest) -> SearchOutcome:
        """Embed the query, choose partitions by the category cascade, search them. A query image that cannot be
        fetched or decoded is an InvalidField naming `image`."""
        self._requested_partition(request.category, "category")
        (result,) = await self.analysis.analyze([ImageIn(id="query", url=request.image.url, data=request.image.data)])
        vector = self._vector(result)
        if not result.analysis.ok or vector is None:
            raise InvalidField("image", f"the query image failed ({result.analysis.error_reason or UNDECODABLE})")
        probabilities = self.analysis.class_probabilities(result)
        available = list(await self.index.partitions())
        plan = search_partitions(
            request.category, probabilities, available, request.cascade, request.top_categories, request.min_confidence
        )
        hits = await self.index.search(vector, list(plan.partitions), request.k, request.per_product)
        return SearchOutcome(plan, probabilities, hits)

    async def partitions(self) -> dict[str, int]:
        return await self.index.partitions()

    async def remove_product(self, product_id: str) -> int:
        return await self.index.remove_product(product_id)
