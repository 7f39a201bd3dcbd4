"""CurationService: the category resolution (request category, predicted by the head over the product's images with
placeholders left out, or `default`), type routing and exemplar feeding, with fakes for the fetcher and Triton and
the real library, stores (on a fresh PostgreSQL database) and decisions."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from gateway.clients.database import Database
from gateway.clients.triton import TritonUnavailable
from gateway.decisions.placeholders import LibraryRule, VoteRule
from gateway.schemas import SelectRequest
from gateway.services.curation import CurationService
from gateway.services.placeholders import ExemplarVoting, PlaceholderLibraryService
from gateway.services.presenter import select_response
from gateway.stores.exemplars import ExemplarStore
from gateway.stores.placeholders import PlaceholderLibrary
from tests.gateway.services.fakes import CATALOG, CLASSES, HEAD, FakeTriton, analysis_step, jpeg_b64, one_hot, raw

pytestmark = pytest.mark.anyio


def service(database: Database, triton: FakeTriton, voting: ExemplarVoting | None = None) -> CurationService:
    analysis = analysis_step(triton)
    library = PlaceholderLibraryService(PlaceholderLibrary(database), analysis, LibraryRule())
    return CurationService(CATALOG, analysis, library, voting)


def request(count: int, category=None, product_id="p") -> SelectRequest:
    images = [{"id": f"i{k}", "data": jpeg_b64(k)} for k in range(count)]
    return SelectRequest(product_id=product_id, category=category, images=images)


async def curate(database, raws, category=None):
    curation = service(database, FakeTriton(raws))
    return select_response(await curation.curate(request(len(raws), category)))


needs_head = pytest.mark.skipif(HEAD is None, reason="categories.toml has no [category_head]")


@needs_head
async def test_absent_category_is_predicted_from_the_images_and_routed(database):
    response = await curate(
        database, [raw(1, one_hot("fruit", 0.9)), raw(2, one_hot("vegetables", 0.5)), raw(3, one_hot("fruit", 0.8))]
    )
    assert response.category_source == "predicted" and response.category == HEAD.routes["fruit"]
    prediction = response.category_prediction
    assert prediction.top_class == "fruit" and prediction.trusted and prediction.images == 3
    assert prediction.confidence == pytest.approx((0.9 + 0.125 + 0.8) / 3, abs=1e-4)


@needs_head
async def test_unconfident_prediction_falls_back_to_default_and_says_so(database):
    response = await curate(
        database, [raw(1, one_hot("fruit", 0.4)), raw(2, one_hot("apparel", 0.4))], category="toaster"
    )
    assert response.category_source == "default" and response.category == "default"
    assert response.category_prediction is not None and not response.category_prediction.trusted
    assert response.category_prediction.category is None


@needs_head
async def test_placeholder_images_do_not_vote_on_the_category(database):
    raws = [raw(1, one_hot("apparel", 0.9)), raw(2, one_hot("gear", 1.0), placeholder=0.97)]
    response = await curate(database, raws)
    assert response.category_prediction.images == 1
    assert response.category_prediction.top_class == "apparel" and response.category == HEAD.routes["apparel"]


@needs_head
async def test_request_category_wins_and_no_served_head_means_default(database):
    raws = [raw(1, one_hot("fruit", 0.95))]
    given = await curate(database, raws, category="Apparel")
    assert (given.category, given.category_source, given.category_prediction) == ("apparel", "request", None)
    unserved = await curate(database, [raw(1, None)])
    assert (unserved.category, unserved.category_source, unserved.category_prediction) == ("default", "default", None)


@needs_head
async def test_a_head_of_another_width_is_ignored_not_misread(database, caplog):
    wrong = np.full(len(CLASSES) + 1, 1.0 / (len(CLASSES) + 1), np.float32)  # classes edited, head not retrained
    curation = service(database, FakeTriton([raw(1, wrong), raw(2, wrong)]))
    with caplog.at_level("WARNING", logger="imgsel.service"):
        response = select_response(await curation.curate(request(2)))
        await curation.curate(request(2))
    assert (response.category, response.category_source) == ("default", "default")
    assert response.category_prediction is None
    assert sum("category head gives" in r.getMessage() for r in caplog.records) == 1  # once, not per image


async def test_types_come_from_the_categorys_head_when_it_is_served(database):
    apparel = CATALOG.get("apparel")
    probs = np.zeros((2, len(apparel.types) + 1), np.float32)
    probs[0, 1] = 0.8  # the second type
    probs[1, -1] = 0.7  # an output past the category's types
    gear = np.zeros(len(apparel.types), np.float32)
    gear[0] = 1.0  # another category's head: never read for an apparel product
    triton = FakeTriton([raw(k + 1, type_probs={"apparel": probs[k], "gear": gear}) for k in range(2)])
    response = select_response(await service(database, triton).curate(request(2, category="apparel")))
    assert [(i.type, i.type_confidence) for i in response.images] == [(apparel.types[1], 0.8), ("unknown", 0.7)]
    unserved = select_response(await service(database, FakeTriton([raw(1)])).curate(request(1, category="apparel")))
    assert (unserved.images[0].type, unserved.images[0].type_confidence) == ("unknown", None)


async def test_a_named_colour_reaches_the_variant_check_and_the_response(database):
    triton = FakeTriton([raw(k) for k in (1, 2, 3)])
    named = request(3, category="apparel").model_copy(update={"colour": "Navy / white"})
    response = select_response(await service(database, triton).curate(named))
    assert response.colour_terms == ["blue", "white"]
    shares = [i.variant.colour_share for i in response.images]
    assert all(share is not None and 0.0 <= share <= 1.0 for share in shares) and max(shares) > 0
    plain = select_response(
        await service(database, FakeTriton([raw(k) for k in (1, 2, 3)])).curate(request(3, "apparel"))
    )
    assert plain.colour_terms is None and all(i.variant.colour_share is None for i in plain.images)


async def test_selected_images_feed_the_exemplar_store_and_vote_on_later_products(database):
    store = ExemplarStore(database)
    voting = ExemplarVoting(store, VoteRule(exemplars=2, min_votes=2, min_similarity_alone=0.5), 0.05)
    shirt = raw(1).embedding
    for p in range(2):
        triton = FakeTriton([raw(1, embedding=shirt), raw(50 + p, placeholder=0.3)])
        curated = await service(database, triton, voting).curate(request(2, "apparel", f"p{p}"))
        assert curated.selected == ["i0", "i1"]
        await voting.drain()  # the feed is written after the answer
    # One per product: the doubtful image (placeholder 0.3) is never fed.
    assert await store.categories() == {"apparel": 2}
    later = FakeTriton([raw(1, embedding=shirt, placeholder=0.1), raw(99, placeholder=0.1)])
    curated = await service(database, later, voting).curate(request(2, "apparel", "p9"))
    assert [v.vote.outcome for v in curated.verdicts] == ["product", "placeholder"]
    assert curated.selected == ["i0"] and curated.verdicts[1].reasons == ["placeholder"]


async def test_dedup_groups_the_requests_duplicates(database):
    same = raw(1)
    triton = FakeTriton([same, raw(2), same])
    groups = await service(database, triton).dedup(request(3).images)
    assert groups == [["i0", "i2"], ["i1"]]


async def test_served_compliance_checks_reject_with_their_reason_and_are_named_in_the_response(database):
    raws = [
        dataclasses.replace(raw(1), compliance={"weapons": 0.97, "text_overlay": 0.1}),
        dataclasses.replace(raw(2), compliance={"weapons": 0.02, "text_overlay": 0.81}),
        dataclasses.replace(raw(3), compliance={"weapons": 0.02, "text_overlay": 0.1}),
    ]
    response = await curate(database, raws, category="apparel")
    first, second, third = response.images
    assert (first.status, first.reasons) == ("rejected", ["non_compliant"])
    assert [(c.check, c.reason, c.score, c.threshold) for c in first.compliance] == [
        ("weapons", "non_compliant", 0.97, 0.5)
    ]
    assert (second.status, second.reasons, second.compliance[0].check) == ("rejected", ["text_overlay"], "text_overlay")
    assert third.status == "selected" and third.compliance == [] and third.scores["weapons"] == 0.02
    assert response.selected == ["i2"]


async def until(condition, polls: int = 1000) -> None:
    """Yields to the loop until `condition()` holds (fails after `polls` turns of 5 ms rather than hanging)."""
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


class GatedTriton(FakeTriton):
    """Answers only once `release` is set (or fails with `error`): the state reads can be watched meanwhile."""

    def __init__(self, raws, error: Exception | None = None):
        super().__init__(raws)
        self.release = asyncio.Event()
        self.error = error

    async def analyze(self, files):
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return await super().analyze(files)


class WatchedExemplars(ExemplarStore):
    """The real store, noting when the vote's read ran and whether it was cancelled."""

    def __init__(self, database):
        super().__init__(database)
        self.reads: list[str] = []

    async def recent(self, category, k, exclude_product=None):
        self.reads.append("started")
        try:
            rows = await super().recent(category, k, exclude_product)
        except asyncio.CancelledError:
            self.reads.append("cancelled")
            raise
        self.reads.append("done")
        return rows


async def test_a_named_categorys_state_is_read_while_the_models_run(database):
    store = WatchedExemplars(database)
    await store.add("apparel", "other", [("hero", raw(1).embedding)])
    triton = GatedTriton([raw(1)])
    voting = ExemplarVoting(store, VoteRule(exemplars=1, min_votes=1), 0.05, background=False)
    curation = asyncio.create_task(service(database, triton, voting).curate(request(1, "apparel")))
    await until(lambda: store.reads == ["started", "done"])  # the read finishes while the model call still waits
    assert not curation.done()
    triton.release.set()
    response = select_response(await curation)
    assert response.images[0].placeholder_vote.exemplars == 1  # the vote used what was read ahead
    assert store.reads == ["started", "done"]  # and read nothing more

    # Without a named category the vote waits for the chosen one and reads it then.
    store.reads.clear()
    await service(database, FakeTriton([raw(1)]), voting).curate(request(1, None))
    assert store.reads == ["started", "done"]


async def test_a_failed_model_call_cancels_the_state_read_it_ran_beside(database):
    class StalledExemplars(WatchedExemplars):
        async def recent(self, category, k, exclude_product=None):
            self.reads.append("started")
            try:
                await asyncio.Event().wait()  # a store that never answers
            except asyncio.CancelledError:
                self.reads.append("cancelled")
                raise

    store = StalledExemplars(database)
    triton = GatedTriton([raw(1)], error=TritonUnavailable("server gone"))
    curation = service(database, triton, ExemplarVoting(store, VoteRule(), 0.05))
    task = asyncio.create_task(curation.curate(request(1, "apparel")))
    await until(lambda: store.reads == ["started"])
    triton.release.set()
    with pytest.raises(TritonUnavailable):
        await task
    assert store.reads == ["started", "cancelled"]  # nothing left running after the request's answer


async def test_large_requests_decide_in_a_worker_thread_small_ones_on_the_loop(database, monkeypatch):
    """A request's pure decisions run on the event loop up to INLINE_DECISION_IMAGES images and in a worker thread
    past it, so a 200-image clustering cannot hold every other request of the gateway; the answer is the same."""
    import threading

    import gateway.services.curation as curation_module

    threads: dict[str, list[int]] = {"select": [], "dedup_groups": []}
    for name in threads:
        decision = getattr(curation_module, name)

        def recording(*args, _decision=decision, _name=name, **kwargs):
            threads[_name].append(threading.get_ident())
            return _decision(*args, **kwargs)

        monkeypatch.setattr(curation_module, name, recording)
    loop_thread = threading.get_ident()
    limit = curation_module.INLINE_DECISION_IMAGES
    for count in (limit, limit + 1):
        raws = [raw(k, None) for k in range(count)]
        selected = await service(database, FakeTriton(raws)).curate(request(count))
        groups = await service(database, FakeTriton(raws)).dedup(request(count).images)
        assert len(selected.verdicts) == count and sorted(i for g in groups for i in g) == sorted(
            f"i{k}" for k in range(count)
        )
    assert [t == loop_thread for t in threads["select"]] == [True, False]
    assert [t == loop_thread for t in threads["dedup_groups"]] == [True, False]
