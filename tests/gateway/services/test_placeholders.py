"""The placeholder services: the library (add through the analysis step, list, remove, match) and the exemplar vote
against the PostgreSQL store (a fresh database per test), fed only with confident selections."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw
from prometheus_client import REGISTRY

from contract.tensors import HSV_HIST_BINS
from gateway.clients.database import StoreUnavailable
from gateway.decisions.analysis import ImageAnalysis, LibraryMatch
from gateway.decisions.placeholders import LibraryRule, VoteRule
from gateway.decisions.selection import select
from gateway.hashing import ImageHashes, compute_hashes, hamming, whole_phash
from gateway.schemas import ImageIn
from gateway.services.analysis import Analyzed
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from gateway.timing import DATABASE, end_request, start_request
from tests.gateway.services.fakes import CATALOG, FakeTriton, analysis_step, jpeg_b64, raw, unit

pytestmark = pytest.mark.anyio


async def test_library_adds_analysed_images_reports_failures_and_matches_them(database):
    triton = FakeTriton([raw(1), raw(2)])
    library = PlaceholderLibraryService(PlaceholderLibrary(database), analysis_step(triton), LibraryRule())
    images = [
        ImageIn(id="no-image", data=jpeg_b64(1), supplier="S"),
        ImageIn(id="gone", url="https://cdn.example/x.jpg"),
        ImageIn(id="coming-soon", data=jpeg_b64(2)),
    ]
    result = await library.add(images)
    assert result.added == ["no-image", "coming-soon"] and result.failed == [("gone", "fetch_failed")]
    assert sorted((e.id, e.supplier) for e in await library.entries()) == [("coming-soon", None), ("no-image", "S")]

    noise = np.random.default_rng(7).integers(0, 256, (128, 128, 3), dtype=np.uint8)  # like no product photo
    analyzed = await analysis_step(FakeTriton([raw(2), replace(raw(7), thumb=noise)])).analyze([images[0], images[2]])
    await library.match(analyzed)
    assert analyzed[0].analysis.library_match == LibraryMatch("coming-soon", 0)
    assert analyzed[1].analysis.library_match is None
    assert await library.remove("coming-soon") and not await library.remove("coming-soon")


def grey_page_placeholder(side: int) -> np.ndarray:
    """A "no image" drawing on a grey page (a bar and a dot), as some shop platforms serve one."""
    page = Image.new("RGB", (side, side), (210, 214, 220))
    draw = ImageDraw.Draw(page)
    draw.rectangle((side * 3 // 8, side // 5, side * 5 // 8, side * 4 // 5), fill=(170, 176, 186))
    draw.ellipse((side // 6, side // 6, side // 3, side // 3), fill=(185, 190, 198))
    return np.asarray(page)


async def test_a_padded_copy_of_a_placeholder_on_a_grey_page_matches_its_whole_picture_key(database):
    """The library stores the whole picture's pHash beside the content box's; a supplier's copy padded with white has
    the grey page as its content box, which only the whole-picture key matches."""
    original = grey_page_placeholder(128)
    padded = Image.new("RGB", (160, 160), (255, 255, 255))
    padded.paste(Image.fromarray(original).resize((112, 112), Image.Resampling.LANCZOS), (24, 24))
    squashed = np.asarray(padded.resize((128, 128), Image.Resampling.LANCZOS))
    triton = FakeTriton([replace(raw(1), thumb=original)])
    library = PlaceholderLibraryService(PlaceholderLibrary(database), analysis_step(triton), LibraryRule())
    await library.add([ImageIn(id="grey-page", data=jpeg_b64(1))])
    [entry] = await library.entries()
    assert entry.whole_phash == whole_phash(original) != entry.phash
    copy = compute_hashes(squashed).phash
    assert hamming(np.uint64(entry.phash), copy) > 16  # the content box alone would miss it
    [analyzed] = await analysis_step(FakeTriton([replace(raw(2), thumb=squashed)])).analyze(
        [ImageIn(id="copy", data=jpeg_b64(2))]
    )
    await library.match([analyzed])
    assert analyzed.analysis.library_match == LibraryMatch(
        "grey-page", int(hamming(np.uint64(entry.whole_phash), copy))
    )
    assert analyzed.analysis.library_match.distance <= LibraryRule().alone_distance


async def test_a_loose_library_match_needs_the_learned_score_to_stand(database):
    library = PlaceholderLibraryService(
        PlaceholderLibrary(database), analysis_step(FakeTriton([raw(1)])), LibraryRule(16, 12, 0.02)
    )
    await library.add([ImageIn(id="no-image", data=jpeg_b64(1))])
    [known] = await library.entries()
    hashes = ImageHashes(known.phash ^ 0x3FFF, 0, np.zeros(HSV_HIST_BINS, np.float32))  # 14 bits off

    def near(score: float) -> Analyzed:
        scores = {"placeholder": score}
        analysis = ImageAnalysis(id="x", supplier="A", index=0, ok=True, width=900, height=900, scores=scores)
        analysis.hashes = hashes
        return Analyzed(analysis, unit(1))

    product, doubtful = near(0.0002), near(0.3)
    await library.match([product, doubtful])
    assert product.analysis.library_match is None  # a product photo 14 bits from a placeholder stays a product
    assert doubtful.analysis.library_match == LibraryMatch("no-image", 14)


async def test_voting_against_the_store_and_feeding_it_only_confident_selections(database):
    apparel = CATALOG.get("apparel")
    store = ExemplarStore(database)
    voting = ExemplarVoting(store, VoteRule(exemplars=3, min_votes=2), max_placeholder_score=0.05)

    def item(image_id: str, index: int, embedding: np.ndarray, placeholder: float) -> Analyzed:
        scores = {"placeholder": placeholder}
        analysis = ImageAnalysis(id=image_id, supplier="A", index=index, ok=True, width=900, height=900, scores=scores)
        return Analyzed(analysis, embedding)

    shirt = unit(1)
    first = [item("a", 0, shirt, 0.0)]
    await voting.vote(first, apparel, "p0")
    assert first[0].analysis.vote.outcome == "abstained"
    for p in range(3):  # three products accepted; a doubtful score is never fed
        batch = [item("hero", 0, shirt, 0.0), item("doubt", 1, unit(50 + p), 0.3)]
        await voting.vote(batch, apparel, f"p{p}")
        _, verdicts = select([b.analysis for b in batch], apparel)
        await voting.remember(batch, verdicts, apparel, f"p{p}")
        await voting.drain()
    assert await store.categories() == {"apparel": 3}
    unseen = [item("new", 0, unit(99), 0.2), item("same", 1, shirt, 0.2)]
    await voting.vote(unseen, apparel, "p9")
    assert unseen[0].analysis.vote.outcome == "placeholder" and unseen[0].analysis.vote.unlike == 3
    assert unseen[1].analysis.vote.outcome == "product"


async def test_the_vote_applies_the_category_similarity(database):
    apparel = CATALOG.get("apparel")
    store = ExemplarStore(database)
    await store.add("apparel", "p0", [("hero", unit(1))])
    voting = ExemplarVoting(store, VoteRule(exemplars=1, min_votes=1, min_similarity=0.1), max_placeholder_score=0.05)
    analysis = ImageAnalysis(id="x", supplier="A", index=0, ok=True, width=900, height=900, scores={"placeholder": 0.3})
    near = (unit(1) + unit(2)) / np.linalg.norm(unit(1) + unit(2))  # similarity ~0.7 to the exemplar
    for similarity, outcome in ((0.5, "product"), (0.9, "placeholder")):
        item = Analyzed(replace(analysis), near)
        await voting.vote([item], replace(apparel, placeholder_vote_similarity=similarity), "p1")
        assert (item.analysis.vote.outcome, item.analysis.vote.similarity) == (outcome, similarity)


class SlowStore:
    """An exemplar store whose writes wait for `release` (or fail with `error`)."""

    def __init__(self, error: Exception | None = None):
        self.release = asyncio.Event()
        self.error = error
        self.added: list[str] = []

    async def add(self, category, product_id, images):
        await self.release.wait()
        if self.error:
            raise self.error
        self.added.append(product_id)
        return len(images)

    async def recent(self, category, k, exclude_product=None):
        return np.zeros((0, 0), np.float32)


def selected_item(image_id: str = "hero") -> tuple[list[Analyzed], list]:
    analysis = ImageAnalysis(id=image_id, supplier="A", index=0, ok=True, width=900, height=900, scores={})
    batch = [Analyzed(analysis, unit(1))]
    return batch, select([b.analysis for b in batch], CATALOG.get("apparel"))[1]


def feeds(outcome: str) -> float:
    return REGISTRY.get_sample_value("imgsel_exemplar_feeds_total", {"outcome": outcome}) or 0.0


async def test_the_feed_is_written_after_the_answer_bounded_and_never_raises():
    store = SlowStore()
    voting = ExemplarVoting(store, VoteRule(), max_placeholder_score=0.05, max_pending_feeds=2)
    stored, skipped = feeds("stored"), feeds("skipped")
    for p in range(3):  # the third finds two writes waiting: skipped
        await voting.remember(*selected_item(), CATALOG.get("apparel"), f"p{p}")  # returns before its write
    assert len(voting._pending) == 2 and store.added == [] and feeds("skipped") == skipped + 1
    waiting = asyncio.create_task(voting.drain())
    await asyncio.sleep(0)
    waiting.cancel()  # a cancelled wait leaves the writes running
    store.release.set()
    await voting.drain()
    assert store.added == ["p0", "p1"] and feeds("stored") == stored + 2

    broken = SlowStore(StoreUnavailable("database unavailable"))
    broken.release.set()
    voting = ExemplarVoting(broken, VoteRule(), max_placeholder_score=0.05)
    failed = feeds("failed")
    await voting.remember(*selected_item(), CATALOG.get("apparel"), "p9")
    await voting.drain()  # logged and counted, not raised
    assert feeds("failed") == failed + 1


async def test_without_background_the_feed_is_awaited_and_its_failure_raises():
    store = SlowStore()
    store.release.set()
    voting = ExemplarVoting(store, VoteRule(), max_placeholder_score=0.05, background=False)
    await voting.remember(*selected_item(), CATALOG.get("apparel"), "p1")
    assert store.added == ["p1"] and not voting._pending
    broken = SlowStore(StoreUnavailable("database unavailable"))
    broken.release.set()
    with pytest.raises(StoreUnavailable):
        await ExemplarVoting(broken, VoteRule(), 0.05, background=False).remember(
            *selected_item(), CATALOG.get("apparel"), "p2"
        )


async def test_the_feed_does_not_count_in_the_requests_server_timing(database):
    store = ExemplarStore(database)
    voting = ExemplarVoting(store, VoteRule(), max_placeholder_score=0.05)
    timer, token = start_request()
    try:
        await voting.remember(*selected_item(), CATALOG.get("apparel"), "p1")
        await voting.drain()
    finally:
        end_request(token)
    assert timer.snapshot().phases[DATABASE] == 0.0
    assert await store.categories() == {"apparel": 1}
