"""gateway.services.presenter: domain results as response models (rounding, unmeasured sizes, evidence, hex pHash)."""

from __future__ import annotations

from contract.categories_file import load_catalog
from gateway.decisions.analysis import Verdict
from gateway.decisions.category import CategoryChoice, CategoryPrediction
from gateway.decisions.placeholders import PlaceholderEvidence, VoteOutcome
from gateway.decisions.search import IndexPlacement, SearchPlan
from gateway.decisions.variant import VariantCheck
from gateway.services.curation import Curation
from gateway.services.placeholders import AddedPlaceholders
from gateway.services.presenter import (
    index_response,
    placeholder_list,
    placeholders_added,
    search_response,
    select_response,
    verdict_out,
)
from gateway.services.search import Indexed, IndexOutcome, SearchOutcome
from gateway.stores.interfaces import Hit, Placeholder

CATALOG = load_catalog()


def verdict(**fields) -> Verdict:
    values = dict(
        id="a", supplier="S", status="selected", position=1, type="front", type_confidence=0.9, reasons=[],
        duplicate_of=None, width=800, height=600, scores={"blur": 0.123456},
    )  # fmt: skip
    return Verdict(**{**values, **fields})


def test_verdict_rounds_scores_and_hides_unmeasured_sizes():
    out = verdict_out(verdict())
    assert (out.width, out.height, out.scores) == (800, 600, {"blur": 0.1235})
    assert out.placeholder is None and out.placeholder_vote is None
    error = verdict_out(verdict(status="error", position=None, reasons=["undecodable"], width=0, height=0, scores={}))
    assert (error.width, error.height) == (None, None)


def test_verdict_carries_the_placeholder_evidence_and_the_vote():
    vote = VoteOutcome("placeholder", 9, 11, 6, 0.16, 0.02, 5)
    out = verdict_out(verdict(placeholder=PlaceholderEvidence("vote", score=0.3, votes=9, exemplars=11), vote=vote))
    assert out.placeholder.model_dump() == {
        "mechanism": "vote", "library_id": None, "distance": None, "score": 0.3, "votes": 9, "exemplars": 11,
    }  # fmt: skip
    assert out.placeholder_vote.model_dump() == {
        "outcome": "placeholder", "unlike": 9, "exemplars": 11, "needed": 6, "similarity": 0.16, "head_min": 0.02,
        "votes_needed": 5,
    }  # fmt: skip


def test_verdict_carries_the_variant_check_rounded():
    out = verdict_out(verdict(variant=VariantCheck(consistent=False, distance=0.623456, threshold=0.5)))
    assert out.variant.model_dump() == {"consistent": False, "distance": 0.6235, "threshold": 0.5, "colour_share": None}
    assert verdict_out(verdict()).variant is None
    named = verdict_out(verdict(variant=VariantCheck(False, 0.3, 0.5, colour_share=0.0123)))
    assert named.variant.colour_share == 0.0123


def test_select_response_says_how_the_colour_was_read():
    choice = CategoryChoice(CATALOG.get("apparel"), "request", None)
    assert select_response(Curation("sku", choice, [], [], {})).colour_terms is None
    named = select_response(Curation("sku", choice, [], [], {}, frozenset({"white", "blue"})))
    assert named.colour_terms == ["blue", "white"]
    assert select_response(Curation("sku", choice, [], [], {}, frozenset())).colour_terms == []


def test_select_response_says_where_the_category_came_from():
    prediction = CategoryPrediction("gear", 0.8, True, "apparel", {"gear": 0.8, "fruit": 0.2}, 3)
    choice = CategoryChoice(CATALOG.get("apparel"), "predicted", prediction)
    response = select_response(Curation("sku", choice, ["a"], [verdict()], {"a": None}))
    assert (response.product_id, response.category, response.category_source) == ("sku", "apparel", "predicted")
    assert response.category_prediction.top_class == "gear" and response.category_prediction.images == 3
    assert response.selected == ["a"] and [i.id for i in response.images] == ["a"]
    default = select_response(Curation("sku", CategoryChoice(CATALOG.default, "default", None), [], [], {}))
    assert default.category_prediction is None


def test_placeholder_responses():
    added = placeholders_added(AddedPlaceholders(["a"], [("b", "undecodable")]))
    assert added.model_dump() == {"added": ["a"], "failed": [{"id": "b", "reason": "undecodable"}]}
    listed = placeholder_list(
        [
            Placeholder("a", 0xF000_0000_0000_0001, 100, 80, "S1", 0xAB, added_at=12.5),
            Placeholder("b", 1, 1, 1, None, added_at=1.0),
        ]
    )
    common = {"width": 100, "height": 80, "supplier": "S1", "added_at": 12.5}
    assert listed.model_dump()["placeholders"][0] == {
        "id": "a",
        "phash": "f000000000000001",
        "whole_phash": "00000000000000ab",
        **common,
    }
    assert listed.model_dump()["placeholders"][1]["whole_phash"] is None  # stored before the key existed


def test_index_and_search_responses():
    outcome = IndexOutcome([Indexed("i1", "p1", IndexPlacement("fruit", "predicted"))], [("i2", "category_unknown")])
    assert index_response(outcome).model_dump() == {
        "indexed": [{"image_id": "i1", "product_id": "p1", "category": "fruit", "category_source": "predicted"}],
        "failed": [{"image_id": "i2", "reason": "category_unknown"}],
    }
    plan = SearchPlan("fruit", "predicted", ("fruit", "gear"))
    found = search_response(SearchOutcome(plan, {"fruit": 0.876543}, [Hit("p1", "i1", "fruit", 0.912345)]))
    assert found.model_dump() == {
        "category": "fruit",
        "category_source": "predicted",
        "searched": ["fruit", "gear"],
        "probabilities": {"fruit": 0.8765},
        "results": [{"product_id": "p1", "image_id": "i1", "score": 0.9123, "category": "fruit"}],
    }
    assert search_response(SearchOutcome(SearchPlan(None, "none", ()), None, [])).probabilities is None
