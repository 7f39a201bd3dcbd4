"""gateway.decisions.placeholders: the unseen-placeholder category vote, how it combines with the library match and
the learned head, which selected images feed the exemplar store, and which images vote on the category."""

import dataclasses

import numpy as np
import pytest

from contract.categories_file import load_catalog
from gateway.decisions.analysis import ImageAnalysis, LibraryMatch
from gateway.decisions.placeholders import (
    LibraryRule,
    VoteRule,
    category_vote,
    counts_toward_category,
    exemplar_feed,
    exemplar_vote,
    placeholder_evidence,
)
from gateway.decisions.selection import select

CATALOG = load_catalog()
APPAREL = CATALOG.get("apparel")
RULE = VoteRule(exemplars=11, min_votes=5, min_similarity=0.3, head_min=0.05, min_similarity_alone=0.2)


def sims(unlike: int, k: int = 11, low: float = 0.1, high: float = 0.6) -> list[float]:
    return [low] * unlike + [high] * (k - unlike)


def analysed(
    scores: dict[str, float], vote=None, library_match=None, id="x", supplier="A", index=0, side=1000
) -> ImageAnalysis:
    return ImageAnalysis(
        id=id,
        supplier=supplier,
        index=index,
        ok=True,
        width=side,
        height=side,
        scores=scores,
        vote=vote,
        library_match=library_match,
    )


def test_five_of_eleven_unlike_calls_a_placeholder():
    assert exemplar_vote(sims(5), RULE).outcome == "placeholder"
    four = exemplar_vote(sims(4), RULE)
    assert (four.outcome, four.unlike, four.exemplars, four.needed, four.votes_needed) == ("product", 4, 11, 6, 5)


def test_the_threshold_is_strict_and_only_the_first_k_exemplars_count():
    at_threshold = [0.3] * 11  # similarity equal to the threshold is not "unlike"
    assert exemplar_vote(at_threshold, RULE).unlike == 0
    # 12 exemplars given, the 12th (least recent) would be the 5th unlike vote: not used.
    assert exemplar_vote(sims(4) + [0.0], RULE).outcome == "product"


def test_a_cold_category_votes_from_its_quorum_with_the_same_share_of_unlike_votes():
    outcome = exemplar_vote(sims(5, k=5), RULE)  # under the quorum of 6: abstains, whatever the similarities
    assert (outcome.outcome, outcome.unlike, outcome.exemplars, outcome.needed, outcome.votes_needed) == (
        "abstained", 0, 5, 6, 0,
    )  # fmt: skip
    assert not outcome.fired and exemplar_vote([], RULE).outcome == "abstained"
    assert exemplar_vote(sims(3, k=6), RULE).fired and not exemplar_vote(sims(2, k=6), RULE).fired  # 3 of 6
    assert [RULE.votes_needed(n) for n in range(6, 12)] == [3, 4, 4, 5, 5, 5]  # ceil(n * 5 / 11)
    assert exemplar_vote(sims(4, k=8), RULE).fired and not exemplar_vote(sims(3, k=8), RULE).fired
    assert VoteRule(exemplars=3, min_votes=2).quorum == 3  # never above the exemplars it would use


def test_without_the_head_the_vote_uses_the_stricter_threshold():
    between = [0.25] * 11  # unlike at 0.3, not at 0.2
    assert exemplar_vote(between, RULE, head_ran=True).fired
    alone = exemplar_vote(between, RULE, head_ran=False)
    assert not alone.fired and alone.similarity == 0.2 and alone.head_min is None


def test_rule_is_configurable_and_validated():
    three_of_seven = VoteRule(exemplars=7, min_votes=3, min_similarity=0.3)
    assert exemplar_vote(sims(3, k=7), three_of_seven).fired
    with pytest.raises(ValueError):
        VoteRule(exemplars=5, min_votes=6)
    with pytest.raises(ValueError):
        VoteRule(exemplars=0, min_votes=0)
    with pytest.raises(ValueError):
        VoteRule(min_exemplars=0)


def test_a_category_with_its_own_vote_similarity_gets_it_and_keeps_the_rest_of_the_rule():
    own = dataclasses.replace(APPAREL, placeholder_vote_similarity=0.45)
    rule = RULE.in_category(own)
    assert rule == dataclasses.replace(RULE, min_similarity=0.45)
    assert RULE.in_category(dataclasses.replace(APPAREL, placeholder_vote_similarity=None)) is RULE
    between = [0.4] * 11  # unlike at 0.45, not at the service-wide 0.3
    assert exemplar_vote(between, rule).fired and exemplar_vote(between, rule).similarity == 0.45
    assert not exemplar_vote(between, RULE).fired


def test_vote_rejects_only_with_the_head_at_its_gate():
    fired = exemplar_vote(sims(11), RULE)
    evidence = placeholder_evidence(analysed({"placeholder": 0.2}, fired), APPAREL)
    assert (evidence.mechanism, evidence.votes, evidence.exemplars, evidence.score) == ("vote", 11, 11, 0.2)
    # The head vouches for a real product that happens to be unlike the category's recent images.
    assert placeholder_evidence(analysed({"placeholder": 0.01}, fired), APPAREL) is None


def test_vote_stands_alone_when_no_placeholder_score_ran():
    fired = exemplar_vote(sims(11), RULE, head_ran=False)
    evidence = placeholder_evidence(analysed({"blur": 0.1}, fired), APPAREL)
    assert evidence.mechanism == "vote" and evidence.score is None


def test_mechanism_precedence_library_then_head_then_vote():
    fired = exemplar_vote(sims(11), RULE)
    both = analysed({"placeholder": 0.9}, fired, LibraryMatch("solidus", 4))
    assert placeholder_evidence(both, APPAREL).mechanism == "library"
    head_and_vote = analysed({"placeholder": 0.9}, fired)
    assert placeholder_evidence(head_and_vote, APPAREL).mechanism == "head"
    abstained = exemplar_vote(sims(3, k=3), RULE)
    assert placeholder_evidence(analysed({"placeholder": 0.3}, abstained), APPAREL) is None


def test_select_reports_the_vote_for_every_analysed_image():
    product = analysed({"placeholder": 0.0}, exemplar_vote(sims(0), RULE))
    placeholder = analysed({"placeholder": 0.3}, exemplar_vote(sims(9), RULE), id="p", supplier="B", index=1, side=800)
    selected, verdicts = select([product, placeholder], APPAREL)
    assert selected == ["x"]
    assert verdicts[0].vote.outcome == "product" and verdicts[0].placeholder is None
    assert verdicts[1].status == "rejected" and verdicts[1].reasons == ["placeholder"]
    assert verdicts[1].placeholder.mechanism == "vote" and verdicts[1].vote.unlike == 9


def test_library_match_rejects_with_placeholder_reason_and_evidence():
    category = load_catalog().get("apparel")
    matched = ImageAnalysis(
        id="p",
        supplier=None,
        index=0,
        ok=True,
        width=800,
        height=800,
        library_match=LibraryMatch("opencart-no-image", 3),
    )
    clean = ImageAnalysis(id="c", supplier=None, index=1, ok=True, width=800, height=800)
    selected, verdicts = select([matched, clean], category)
    assert selected == ["c"]
    assert verdicts[0].status == "rejected" and verdicts[0].reasons == ["placeholder"]
    assert verdicts[0].placeholder.mechanism == "library"
    assert (verdicts[0].placeholder.library_id, verdicts[0].placeholder.distance) == ("opencart-no-image", 3)
    assert verdicts[1].placeholder is None


# --- the vote on one image ------------------------------------------------------------------------------------------


def unit(seed: int, dim: int = 64) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_category_vote_compares_the_embedding_with_the_exemplars_and_gates_by_the_head():
    rule = VoteRule(exemplars=3, min_votes=2, min_similarity=0.5, min_similarity_alone=0.5)
    shirt = unit(1)
    exemplars = np.stack([shirt, shirt, shirt])
    assert category_vote(analysed({"placeholder": 0.1}), shirt, exemplars, rule).outcome == "product"
    unlike = category_vote(analysed({"placeholder": 0.1}), unit(2), exemplars, rule)
    assert (unlike.outcome, unlike.unlike, unlike.head_min) == ("placeholder", 3, rule.head_min)
    alone = category_vote(analysed({"blur": 0.1}), unit(2), exemplars, rule)
    assert alone.fired and alone.head_min is None  # no placeholder score ran: the vote stands alone
    empty = category_vote(analysed({}), shirt, np.zeros((0, 0), np.float32), rule)
    assert (empty.outcome, empty.exemplars) == ("abstained", 0)


# --- exemplar feeding -----------------------------------------------------------------------------------------------


def test_exemplar_feed_takes_confident_selections_in_page_order():
    product = exemplar_vote(sims(0), RULE)
    images = [
        analysed({"placeholder": 0.0}, product, id="second", index=0, side=900),
        analysed({"placeholder": 0.0}, product, id="hero", index=1, side=1500),
        analysed({"placeholder": 0.04}, product, id="doubt", index=2, side=800),
        analysed({"blur": 0.1}, None, id="unscored", index=3, side=700),
        analysed({"blur": 0.9}, None, id="blurry", index=4, side=2000),
    ]
    selected, verdicts = select(images, APPAREL)
    assert selected == ["unscored", "hero", "second", "doubt"]  # no type head: sharpest (measured) first, then area
    assert exemplar_feed(verdicts, max_placeholder_score=0.05) == ["unscored", "hero", "second", "doubt"]
    assert exemplar_feed(verdicts, max_placeholder_score=0.04) == ["unscored", "hero", "second"]  # strict threshold


def test_exemplar_feed_skips_images_the_vote_is_against_or_any_placeholder_evidence():
    fired = exemplar_vote(sims(11), RULE)
    _, verdicts = select([analysed({"placeholder": 0.01}, fired, id="unlike")], APPAREL)
    assert verdicts[0].status == "selected"  # the head vouches for it, so it stays on the page...
    assert exemplar_feed(verdicts, max_placeholder_score=0.05) == []  # ...but it does not teach the vote
    rejected = [analysed({"placeholder": 0.9}, id="p")]
    assert exemplar_feed(select(rejected, APPAREL)[1], max_placeholder_score=1.0) == []


# --- which images vote on the category ------------------------------------------------------------------------------


def test_known_and_learned_placeholders_do_not_count_toward_the_category():
    default = CATALOG.default
    threshold = default.quality.placeholder_max
    assert counts_toward_category(analysed({"placeholder": threshold - 0.01}), default)
    assert counts_toward_category(analysed({"blur": 0.1}), default)  # no placeholder score: counts
    assert not counts_toward_category(analysed({"placeholder": threshold}), default)
    assert not counts_toward_category(analysed({}, library_match=LibraryMatch("known", 2)), default)


def test_a_loose_library_match_stands_only_where_the_head_does_not_call_the_image_a_product():
    rule = LibraryRule(max_distance=16, alone_distance=12, head_min=0.02)
    assert rule.stands(12, 0.0001)  # near: a known placeholder, whatever the head says
    assert not rule.stands(16, 0.0002)  # a real photo at 16 bits of a placeholder, the head sure it is a product
    assert rule.stands(16, 0.3) and rule.stands(16, None)  # the head vouches, or did not run
    assert not rule.stands(17, 1.0)  # past max_distance nothing matches
    distances, scores = np.array([3, 14, 14, 20]), np.array([0.0, 0.01, 0.5, 0.9])
    assert rule.stands(distances, scores).tolist() == [True, False, True, False]  # the evaluations' columns
    with pytest.raises(ValueError, match="alone_distance"):
        LibraryRule(max_distance=10, alone_distance=12)
