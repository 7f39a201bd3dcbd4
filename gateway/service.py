"""Request orchestration: fetch -> one Triton analyze pass -> type routing -> pure decisions.

I/O lives here; every decision is delegated to gateway.decisions (pure, tested without a server).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass

import numpy as np

from contract.categories import Catalog, Category
from gateway.clients.fetch import Fetcher
from gateway.clients.triton import RawAnalysis, TritonAnalyzer
from gateway.decisions import (
    UNKNOWN_TYPE,
    CategoryPrediction,
    ImageAnalysis,
    VoteRule,
    dedup_groups,
    exemplar_vote,
    partition_name,
    predict_category,
    search_partitions,
    select,
)
from gateway.hashing import compute_hashes
from gateway.metrics import IMAGE_OUTCOMES
from gateway.schemas import (
    CategoryPredictionOut,
    ImageIn,
    ImageVerdictOut,
    IndexedOut,
    IndexFailedOut,
    IndexRequest,
    IndexResponse,
    PlaceholderEvidenceOut,
    PlaceholdersAdded,
    PlaceholderVoteOut,
    SearchHitOut,
    SearchRequest,
    SearchResponse,
    SelectRequest,
    SelectResponse,
)
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.stores.search_index import SearchIndex

log = logging.getLogger("imgsel.service")


@dataclass
class Analyzed:
    analysis: ImageAnalysis
    embedding: np.ndarray | None
    thumb: np.ndarray | None = None  # Triton's 128x128 RGB thumbnail (aspect squashed); None when not analysed
    category_probs: np.ndarray | None = None  # the top-level category head's output, when served


@dataclass
class Curation:
    """A selection and what a report needs to show it: Triton's thumbnail of every analysed image, by input id."""

    response: SelectResponse
    thumbnails: dict[str, np.ndarray | None]


def to_analysis(index: int, image: ImageIn, raw: RawAnalysis | None, reason: str | None) -> Analyzed:
    common = dict(id=image.id, supplier=image.supplier, index=index, supplier_priority=image.supplier_priority)
    if reason is not None:
        return Analyzed(ImageAnalysis(ok=False, error_reason=reason, **common), None)
    if raw is None or not raw.valid:
        return Analyzed(ImageAnalysis(ok=False, error_reason="undecodable", **common), None)
    analysis = ImageAnalysis(
        ok=True,
        width=raw.width,
        height=raw.height,
        scores=dict(raw.quality),
        hashes=compute_hashes(raw.thumb),
        **common,
    )
    return Analyzed(analysis, raw.embedding, raw.thumb, raw.category_probs)


class Curator:
    def __init__(
        self,
        catalog: Catalog,
        fetcher: Fetcher,
        analyzer: TritonAnalyzer,
        placeholders: PlaceholderLibrary,
        placeholder_max_distance: int,
        exemplars: ExemplarStore | None = None,
        vote_rule: VoteRule | None = None,
        exemplar_max_placeholder_score: float = 0.05,
        search_index: SearchIndex | None = None,
    ):
        self.catalog = catalog
        self.fetcher = fetcher
        self.analyzer = analyzer
        self.placeholders = placeholders
        self.placeholder_max_distance = placeholder_max_distance
        self.exemplars = exemplars  # None: no category vote
        self.vote_rule = vote_rule or VoteRule()
        self.exemplar_max_placeholder_score = exemplar_max_placeholder_score
        self.search_index = search_index  # None: no visual search
        self._warned_head_width = False

    def match_placeholders(self, analyzed: list[Analyzed]) -> None:
        """Mark images whose pHash is near a known placeholder (the library's half of placeholder detection)."""
        hashed = [a.analysis for a in analyzed if a.analysis.hashes is not None]
        matches = self.placeholders.match([a.hashes.phash for a in hashed], self.placeholder_max_distance)
        for analysis, match in zip(hashed, matches):
            analysis.library_match = match

    def vote_placeholders(self, analyzed: list[Analyzed], category: str, product_id: str) -> None:
        """The category vote (pure rule in gateway.decisions) against the category's recent exemplars of other
        products; abstains while the category has too few."""
        if self.exemplars is None:
            return
        exemplars = self.exemplars.recent(category, self.vote_rule.exemplars, exclude_product=product_id)
        for item in analyzed:
            if item.embedding is None:
                continue
            similarities = exemplars @ item.embedding if len(exemplars) else []
            head_ran = "placeholder" in item.analysis.scores
            item.analysis.vote = exemplar_vote(similarities, self.vote_rule, head_ran)

    def remember_exemplars(self, analyzed: list[Analyzed], verdicts, category: str, product_id: str) -> None:
        """Feed the category's exemplar store with this product's confidently good images: selected, no placeholder
        evidence, the vote not against them, the placeholder score (when it ran) below the feeding threshold."""
        if self.exemplars is None:
            return
        by_id = {a.analysis.id: a for a in analyzed}
        good = []
        for verdict in sorted((v for v in verdicts if v.status == "selected"), key=lambda v: v.position):
            item = by_id.get(verdict.id)
            if item is None or item.embedding is None or verdict.placeholder is not None:
                continue
            if verdict.vote is not None and verdict.vote.fired:
                continue
            if verdict.scores.get("placeholder", 0.0) >= self.exemplar_max_placeholder_score:
                continue
            good.append((verdict.id, item.embedding))
        if good:
            self.exemplars.add(category, product_id, good)

    async def add_placeholders(self, images: list[ImageIn]) -> PlaceholdersAdded:
        """Hash through the same Triton path as product images (same decode, same thumbnail), then store."""
        analyzed = await self.analyze(images)
        rows = [
            (a.analysis.id, a.analysis.hashes.phash, a.analysis.width, a.analysis.height, a.analysis.supplier)
            for a in analyzed
            if a.analysis.ok
        ]
        added = await asyncio.to_thread(self.placeholders.add, rows) if rows else []
        failed = [{"id": a.analysis.id, "reason": a.analysis.error_reason} for a in analyzed if not a.analysis.ok]
        return PlaceholdersAdded(added=added, failed=failed)

    async def analyze(self, images: list[ImageIn]) -> list[Analyzed]:
        fetched = await self.fetcher.fetch_all(images)
        usable = [i for i, f in enumerate(fetched) if f.data is not None]
        raws = await self.analyzer.analyze([fetched[i].data for i in usable])
        raw_by_index = dict(zip(usable, raws))
        # Hashing is CPU work (~1 ms an image): off the event loop so other requests keep flowing.
        return await asyncio.to_thread(
            lambda: [to_analysis(i, image, raw_by_index.get(i), fetched[i].reason) for i, image in enumerate(images)]
        )

    def predict_category(self, analyzed: list[Analyzed]) -> CategoryPrediction | None:
        """The head's vote over the request's decodable images, leaving out known placeholders and images the learned
        head calls placeholders (they are unlike every category and would only blur the mean)."""
        head = self.catalog.category_head
        if head is None:
            return None
        placeholder_max = self.catalog.default.quality.placeholder_max
        rows = [
            probs
            for a in analyzed
            if (probs := self._head_output(a)) is not None
            and a.analysis.library_match is None
            and a.analysis.scores.get("placeholder", 0.0) < placeholder_max
        ]
        return predict_category(rows, head)

    async def assign_types(self, analyzed: list[Analyzed], category: Category) -> None:
        """Route embeddings to the category's type head; without a served head every type stays `unknown`."""
        typed = [a for a in analyzed if a.embedding is not None]
        if not typed or category.head not in await self.analyzer.ready_models():
            return
        probabilities = await self.analyzer.classify(category.head, np.stack([a.embedding for a in typed]))
        for item, probs in zip(typed, probabilities):
            best = int(np.argmax(probs))
            item.analysis.type = category.types[best] if best < len(category.types) else UNKNOWN_TYPE
            item.analysis.type_confidence = round(float(probs[best]), 4)

    async def select(self, request: SelectRequest) -> SelectResponse:
        return (await self.curate(request)).response

    async def curate(self, request: SelectRequest) -> Curation:
        """The selection of POST /v1/select, with the thumbnails POST /v1/report shows."""
        category, known = self.catalog.resolve(request.category)
        analyzed = await self.analyze(request.images)
        self.match_placeholders(analyzed)
        prediction = None if known else self.predict_category(analyzed)
        if known:
            source = "request"
        elif prediction is not None and prediction.category is not None:
            category, source = self.catalog.resolve(prediction.category)[0], "predicted"
        else:
            source = "default"  # no head served, nothing decodable, or the head not confident enough
        self.vote_placeholders(analyzed, category.name, request.product_id)
        await self.assign_types(analyzed, category)
        selected, verdicts = select([a.analysis for a in analyzed], category, request.max_images)
        await asyncio.to_thread(self.remember_exemplars, analyzed, verdicts, category.name, request.product_id)
        for verdict in verdicts:
            IMAGE_OUTCOMES.labels(status=verdict.status).inc()
        images = [
            ImageVerdictOut(
                id=v.id,
                supplier=v.supplier,
                status=v.status,
                position=v.position,
                type=v.type,
                type_confidence=v.type_confidence,
                reasons=v.reasons,
                duplicate_of=v.duplicate_of,
                width=v.width or None,
                height=v.height or None,
                scores={name: round(score, 4) for name, score in v.scores.items()},
                placeholder=None if v.placeholder is None else PlaceholderEvidenceOut(**asdict(v.placeholder)),
                placeholder_vote=None if v.vote is None else PlaceholderVoteOut(**asdict(v.vote)),
            )
            for v in verdicts
        ]
        response = SelectResponse(
            product_id=request.product_id,
            category=category.name,
            category_source=source,
            category_prediction=None if prediction is None else CategoryPredictionOut(**asdict(prediction)),
            selected=selected,
            images=images,
        )
        return Curation(response, {a.analysis.id: a.thumb for a in analyzed})

    async def dedup(self, images: list[ImageIn]) -> list[list[str]]:
        analyzed = await self.analyze(images)
        return dedup_groups([a.analysis for a in analyzed], self.catalog.default.dedup)

    # ------------------------------------------------------------------------------------------ visual search

    def _head_output(self, item: Analyzed) -> np.ndarray | None:
        """The item's CATEGORY_PROBS when they match the categories file's classes; a served head of another width
        (classes edited, head not retrained) is treated as not served rather than mislabelling partitions."""
        head = self.catalog.category_head
        if head is None or item.category_probs is None:
            return None
        if len(item.category_probs) != len(head.classes):
            if not self._warned_head_width:  # once, not per image of every request
                self._warned_head_width = True
                log.warning(
                    "category head gives %d probabilities but [category_head] lists %d classes: ignoring it (retrain)",
                    len(item.category_probs),
                    len(head.classes),
                )
            return None
        return item.category_probs

    def _class_probabilities(self, item: Analyzed) -> dict[str, float] | None:
        probs = self._head_output(item)
        if probs is None:
            return None
        return {cls: float(p) for cls, p in zip(self.catalog.category_head.classes, probs)}

    def check_partition(self, category: str | None, field: str) -> str | None:
        """The partition a caller's category names; with a head it must be one of its classes (else the cascade could
        never reach it)."""
        name, head = partition_name(category), self.catalog.category_head
        if head is not None and name is not None and name not in head.classes:
            raise InvalidField(field, f"{category!r} is not a top-level category; use one of {', '.join(head.classes)}")
        return name

    async def index_items(self, request: IndexRequest) -> IndexResponse:
        """Embed catalog images through the same Triton path and store them in their top-level category's partition:
        the given category, else the head's verdict over all of the product's images in the request (mean of their
        probabilities, so one odd close-up does not split a product); without either the image fails with
        `category_unknown`."""
        given = [self.check_partition(item.category, f"items.{i}.category") for i, item in enumerate(request.items)]
        images = [ImageIn(id=item.image_id, url=item.url, data=item.data) for item in request.items]
        analyzed = await self.analyze(images)
        product_votes: dict[str, list[np.ndarray]] = {}
        for item, result, name in zip(request.items, analyzed, given):
            probs = self._head_output(result) if result.analysis.ok else None
            if probs is not None and name is None:
                product_votes.setdefault(item.product_id, []).append(probs)
        head = self.catalog.category_head
        product_class = {p: predict_category(v, head).top_class for p, v in product_votes.items()}
        rows, indexed, failed = [], [], []
        for item, result, name in zip(request.items, analyzed, given):
            if not result.analysis.ok or result.embedding is None:
                failed.append(
                    IndexFailedOut(image_id=item.image_id, reason=result.analysis.error_reason or "undecodable")
                )
                continue
            if name is not None:
                partition, source = name, "request"
            elif item.product_id in product_class:
                partition, source = product_class[item.product_id], "predicted"
            else:
                failed.append(IndexFailedOut(image_id=item.image_id, reason="category_unknown"))
                continue
            rows.append((item.product_id, item.image_id, partition, result.embedding))
            indexed.append(
                IndexedOut(
                    image_id=item.image_id, product_id=item.product_id, category=partition, category_source=source
                )
            )
        if rows:
            await asyncio.to_thread(self.search_index.add, rows)
        return IndexResponse(indexed=indexed, failed=failed)

    async def search(self, request: SearchRequest) -> SearchResponse:
        """Embed the query, choose partitions by the category cascade (pure rule), search them."""
        self.check_partition(request.category, "category")
        query = ImageIn(id="query", url=request.image.url, data=request.image.data)
        (result,) = await self.analyze([query])
        if not result.analysis.ok or result.embedding is None:
            raise InvalidField("image", f"the query image failed ({result.analysis.error_reason or 'undecodable'})")
        probabilities = self._class_probabilities(result)
        plan = search_partitions(
            request.category,
            probabilities,
            list(self.search_index.partitions()),
            request.cascade,
            request.top_categories,
        )
        hits = await asyncio.to_thread(
            self.search_index.search, result.embedding, list(plan.partitions), request.k, request.per_product
        )
        return SearchResponse(
            category=plan.category,
            category_source=plan.source,
            searched=list(plan.partitions),
            probabilities=None if probabilities is None else {c: round(p, 4) for c, p in probabilities.items()},
            results=[
                SearchHitOut(
                    product_id=h.product_id, image_id=h.image_id, score=round(h.score, 4), category=h.partition
                )
                for h in hits
            ],
        )


class InvalidField(ValueError):
    """A request field with a value the service cannot use (answered 422 naming `field`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
