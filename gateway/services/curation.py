"""Curation of one product (POST /v1/select, /v1/report) and pure de-duplication (POST /v1/dedup): the analysis step,
placeholder evidence, the category, its type head's output, then the pure selection."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from contract.categories import Catalog, Category
from contract.colours import colour_terms
from gateway.decisions.analysis import Verdict
from gateway.decisions.category import CategoryChoice, CategoryPrediction, choose_category, predict_category
from gateway.decisions.duplicates import dedup_groups
from gateway.decisions.image_types import type_from_head
from gateway.decisions.placeholders import counts_toward_category
from gateway.decisions.selection import select
from gateway.metrics import IMAGE_OUTCOMES
from gateway.schemas import ImageIn, SelectRequest
from gateway.services.analysis import AnalysisStep, Analyzed
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.stores.interfaces import LibraryView
from gateway.timing import DECISIONS, phase

T = TypeVar("T")

# Up to this many images a request's pure decisions (select, dedup_groups) run on the event loop: an 8-image product's
# take ~0.2-12 ms, and a hand-off to a worker thread would add ~0.1 ms to every product's latency for little gain (the
# GIL returns to the loop only every 5 ms switch interval anyway). Past it they run in a worker thread: a 64-image
# request of the benchmark's photos clusters in ~21 ms, 200 synthetic look-alikes in ~0.5 s (the tone rescue's
# residuals), which on the loop would hold every other request of the gateway and its health checks for as long
# (`python -m loadtest.loop_lag`, BENCHMARKS.md issue #13).
INLINE_DECISION_IMAGES = 16


@dataclass
class Curation:
    """One product's curation, and what a report needs to show it: Triton's thumbnail of every analysed image."""

    product_id: str
    choice: CategoryChoice
    selected: list[str]
    verdicts: list[Verdict]
    thumbnails: dict[str, np.ndarray | None]  # by input id
    colours: frozenset[str] | None = None  # the basic terms of the request's `colour`; None: none given


class CurationService:
    def __init__(
        self,
        catalog: Catalog,
        analysis: AnalysisStep,
        library: PlaceholderLibraryService,
        voting: ExemplarVoting | None,
    ):
        self.catalog = catalog
        self.analysis = analysis
        self.library = library
        self.voting = voting  # None: no category vote

    async def curate(self, request: SelectRequest) -> Curation:
        # The state reads that need no image (the library's version; the exemplars of a category the request names)
        # run beside the model call, so their round trips leave the request's path (issue #13).
        requested, known = self.catalog.resolve(request.category)
        async with beside(self._read_state(requested if known else None, request.product_id)) as state_read:
            analyzed = await self.analysis.analyze(request.images)
            # A product with nothing to match or vote on (every image failed) needs no state: no 503 for it when
            # the store is down, as before the read moved here.
            needed = any(a.analysis.hashes is not None for a in analyzed) or (
                self.voting is not None and any(a.embedding is not None for a in analyzed)
            )
            library, exemplars = await state_read if needed else (None, None)
        await self.library.match(analyzed, library)
        choice = choose_category(self.catalog, request.category, lambda: self._predict_category(analyzed))
        category = choice.category
        if self.voting is not None:
            await self.voting.vote(analyzed, category, request.product_id, exemplars)
        assign_types(analyzed, category)
        colours = None if request.colour is None else colour_terms(request.colour)
        choose = functools.partial(
            select, category=category, max_images=request.max_images, colours=colours or frozenset()
        )
        selected, verdicts = await decide(choose, [a.analysis for a in analyzed])
        if self.voting is not None:
            await self.voting.remember(analyzed, verdicts, category, request.product_id)
        for verdict in verdicts:
            IMAGE_OUTCOMES.labels(status=verdict.status).inc()
        thumbnails = {a.analysis.id: a.thumb for a in analyzed}
        return Curation(request.product_id, choice, selected, verdicts, thumbnails, colours)

    async def _read_state(self, category: Category | None, product_id: str) -> tuple[LibraryView, np.ndarray | None]:
        """The library as of now, and `category`'s exemplars for the vote when the category is known before the
        models answer (None: the vote reads its own once the category is chosen). One after the other: one pooled
        connection per request, and a first request meets the schema check once, not twice at the same moment."""
        library = await self.library.current()
        if category is None or self.voting is None:
            return library, None
        return library, await self.voting.exemplars_for(category, product_id)

    async def drain(self) -> None:
        """Wait for the writes that follow answers (the vote's exemplar feed) to finish."""
        if self.voting is not None:
            await self.voting.drain()

    async def dedup(self, images: list[ImageIn]) -> list[list[str]]:
        analyzed = await self.analysis.analyze(images)
        return await decide(dedup_groups, [a.analysis for a in analyzed], self.catalog.default.dedup)

    def _predict_category(self, analyzed: list[Analyzed]) -> CategoryPrediction | None:
        """The head's prediction over the images that count toward the category (decisions.placeholders)."""
        head = self.catalog.category_head
        if head is None:
            return None
        rows = [
            probs
            for a in analyzed
            if (probs := self.analysis.head_output(a)) is not None
            and counts_toward_category(a.analysis, self.catalog.default)
        ]
        return predict_category(rows, head)


# Their own threads: CPU-bound work gains nothing from more threads than cores, and the default executor stays free
# for the short jobs that share it (the gpu profile's hashing, gateway.services.analysis).
_DECISION_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imgsel-decisions")


async def decide(function: Callable[..., T], analyses: list, *args: Any) -> T:
    """`function(analyses, *args)`, one request's pure decisions: on the event loop up to INLINE_DECISION_IMAGES
    images, in one of _DECISION_THREADS past it (with the request's context, and so its log fields). A cancelled
    request's decisions still finish in their thread; nothing waits for them. Timed as the request's DECISIONS
    (Server-Timing `decisions`: what of its overhead de-duplication and selection take)."""
    with phase(DECISIONS):
        if len(analyses) <= INLINE_DECISION_IMAGES:
            return function(analyses, *args)
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, analyses, *args)
        return await asyncio.get_running_loop().run_in_executor(_DECISION_THREADS, call)


@asynccontextmanager
async def beside(read: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Task[T]]:
    """Starts `read` as a task of this request (its phases still count to the request's timer) while the block runs,
    which awaits it. Leaving the block early (an error, a cancelled request) cancels the read and collects its
    outcome, so it never outlives its request and a failure nobody awaited is not logged as lost."""
    task = asyncio.ensure_future(read)
    try:
        yield task
    finally:
        task.cancel()  # a no-op once it has finished
        await asyncio.gather(task, return_exceptions=True)


def assign_types(analyzed: list[Analyzed], category: Category) -> None:
    """Each image's type from its category's type head (one output of the vision model, already in the analysis);
    without a served head for the category every type stays `unknown`."""
    for item in analyzed:
        probs = item.type_probs.get(category.name)
        if item.embedding is not None and probs is not None:
            call = type_from_head(probs, category)
            item.analysis.type, item.analysis.type_confidence = call.type, call.confidence
            item.analysis.type_probabilities = {t: float(p) for t, p in zip(category.types, probs)}
