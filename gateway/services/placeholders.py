"""Placeholder detection's stateful halves: the library of known placeholders (add, list, delete, match) and the
category exemplars the vote compares with (vote, feed). The rules are in gateway.decisions.placeholders."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from contract.categories import Category
from gateway.clients.database import StoreUnavailable
from gateway.decisions.analysis import Verdict
from gateway.decisions.placeholders import LibraryRule, VoteRule, category_vote, exemplar_feed
from gateway.hashing import whole_phash
from gateway.metrics import EXEMPLAR_FEEDS
from gateway.schemas import ImageIn
from gateway.services.analysis import AnalysisStep, Analyzed
from gateway.stores.interfaces import CategoryExemplarStore, LibraryEntry, LibraryView, Placeholder, PlaceholderStore
from gateway.timing import detached_context

log = logging.getLogger("imgsel.service")

# Exemplar writes that may wait at once after their answers (ExemplarVoting.remember): ~1 ms each, so hundreds only
# when the store has stalled; of them, FEED_WRITERS hold a pooled connection at once (the reads on the request path
# need the rest of the pool).
MAX_PENDING_FEEDS = 64
FEED_WRITERS = 2
# A feed written after its answer first waits this long: the answer's client sends its next product at once, and the
# write's ~1 ms on the event loop would stand in that request's way (its body's receive waited behind it); 10 ms on,
# that product is in Triton. At one client: receive p50 1.0 -> 0.4 ms, overhead p50 5.4 -> 4.4-4.8 (BENCHMARKS.md,
# issue #13). The ring is a sample of recent products either way.
FEED_DELAY_S = 0.01


@dataclass(frozen=True)
class AddedPlaceholders:
    added: list[str]
    failed: list[tuple[str, str]]  # (image id, reason code)


class PlaceholderLibraryService:
    def __init__(self, library: PlaceholderStore, analysis: AnalysisStep, rule: LibraryRule):
        self.library = library
        self.analysis = analysis
        self.rule = rule

    async def add(self, images: list[ImageIn]) -> AddedPlaceholders:
        """Hash through the same Triton path as product images (same decode, same thumbnail), then store with both
        keys: the content-box pHash every image is matched by, and the whole picture's (a padded re-serve of a
        placeholder whose page is not white has that page as its content box)."""
        analyzed = await self.analysis.analyze(images)
        rows = [
            LibraryEntry(
                a.analysis.id,
                a.analysis.hashes.phash,
                a.analysis.width,
                a.analysis.height,
                a.analysis.supplier,
                whole_phash(a.thumb),
            )
            for a in analyzed
            if a.analysis.ok
        ]
        added = await self.library.add(rows) if rows else []
        failed = [(a.analysis.id, a.analysis.error_reason) for a in analyzed if not a.analysis.ok]
        return AddedPlaceholders(added, failed)

    async def entries(self) -> list[Placeholder]:
        return await self.library.entries()

    async def remove(self, placeholder_id: str) -> bool:
        return await self.library.remove(placeholder_id)

    async def current(self) -> LibraryView:
        """The library as of now (its read needs no image: a request starts it beside the model call)."""
        return await self.library.snapshot()

    async def match(self, analyzed: list[Analyzed], library: LibraryView | None = None) -> None:
        """Mark images whose pHash is near a known placeholder (the library's half of placeholder detection), where
        the library rule lets the match stand; against `library` when the request has read it already."""
        hashed = [a.analysis for a in analyzed if a.analysis.hashes is not None]
        source = self.library if library is None else library  # the store reads the library first
        matches = await source.match([a.hashes.phash for a in hashed], self.rule.max_distance)
        for analysis, match in zip(hashed, matches):
            if match is not None and self.rule.stands(match.distance, analysis.scores.get("placeholder")):
                analysis.library_match = match


class ExemplarVoting:
    def __init__(
        self,
        exemplars: CategoryExemplarStore,
        rule: VoteRule,
        max_placeholder_score: float,
        max_pending_feeds: int = MAX_PENDING_FEEDS,
        background: bool = True,
    ):
        self.exemplars = exemplars
        self.rule = rule
        self.max_placeholder_score = max_placeholder_score  # exemplar_feed's threshold
        self.max_pending_feeds = max_pending_feeds
        self.background = background  # feed after the answer (remember)
        self._pending: set[asyncio.Task] = set()
        self._writers = asyncio.Semaphore(FEED_WRITERS)

    async def exemplars_for(self, category: Category, product_id: str) -> np.ndarray:
        """The category's recent exemplars of other products, as many as its vote asks (no image needed: a request
        naming its category starts this read beside the model call)."""
        return await self.exemplars.recent(
            category.name, self.rule.in_category(category).exemplars, exclude_product=product_id
        )

    async def vote(
        self, analyzed: list[Analyzed], category: Category, product_id: str, exemplars: np.ndarray | None = None
    ) -> None:
        """The category vote on each analysed image against the category's recent exemplars of other products
        (`exemplars` when read already)."""
        if not any(item.embedding is not None for item in analyzed):
            return  # nothing to vote on: no read
        rule = self.rule.in_category(category)
        if exemplars is None:
            exemplars = await self.exemplars_for(category, product_id)
        for item in analyzed:
            if item.embedding is not None:
                item.analysis.vote = category_vote(item.analysis, item.embedding, exemplars, rule)

    async def remember(
        self, analyzed: list[Analyzed], verdicts: list[Verdict], category: Category, product_id: str
    ) -> None:
        """Feed the category's exemplar store with the images exemplar_feed picks from this product's verdicts.

        With `background` (the HTTP service) the write (a transaction of several statements, ~1 ms) runs after this
        returns, off the request's path (FEED_DELAY_S later, out of the next request's way too): at most
        `max_pending_feeds` wait and FEED_WRITERS hold a connection at once; past that a product's feed is skipped
        (the ring is a sample of recent products, and a store that cannot keep up should not also hold the gateway's
        memory or its pool); a failure is logged and counted. Without it (the catalog backfill) the write is awaited
        and its failure raises, so the product is retried or dead-lettered."""
        embeddings = {a.analysis.id: a.embedding for a in analyzed if a.embedding is not None}
        feed = exemplar_feed(verdicts, self.max_placeholder_score)
        good = [(image_id, embeddings[image_id]) for image_id in feed if image_id in embeddings]
        if not good:
            return
        if not self.background:
            await self.exemplars.add(category.name, product_id, good)
            return
        if len(self._pending) >= self.max_pending_feeds:
            EXEMPLAR_FEEDS.labels(outcome="skipped").inc()
            return
        task = asyncio.create_task(self._store(category.name, product_id, good), context=detached_context())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _store(self, category: str, product_id: str, images: list[tuple[str, np.ndarray]]) -> None:
        try:
            await asyncio.sleep(FEED_DELAY_S)
            async with self._writers:
                await self.exemplars.add(category, product_id, images)
        except StoreUnavailable as error:  # the next product's vote meets the same store and answers 503 itself
            EXEMPLAR_FEEDS.labels(outcome="failed").inc()
            log.warning("exemplar feed of %s not stored: %s", product_id, error)
        except Exception:
            EXEMPLAR_FEEDS.labels(outcome="failed").inc()
            log.exception("exemplar feed of %s failed", product_id)
        else:
            EXEMPLAR_FEEDS.labels(outcome="stored").inc()

    async def drain(self) -> None:
        """Wait for the feeds still being written (at shutdown, before the database closes; tests). Cancelling the
        wait leaves the writes running."""
        while self._pending:
            await asyncio.wait(set(self._pending))
