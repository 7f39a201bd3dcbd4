"""The unseen-placeholder category vote (pure rule) and how it combines with the library match and the learned head."""

import pytest

from contract.categories_file import load_catalog
from gateway.decisions import ImageAnalysis, LibraryMatch, VoteRule, exemplar_vote, placeholder_evidence, select

APPAREL = load_catalog().get("apparel")
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
    assert (four.outcome, four.unlike, four.exemplars, four.needed) == ("product", 4, 11, 11)


def test_the_threshold_is_strict_and_only_the_first_k_exemplars_count():
    at_threshold = [0.3] * 11  # similarity equal to the threshold is not "unlike"
    assert exemplar_vote(at_threshold, RULE).unlike == 0
    # 12 exemplars given, the 12th (least recent) would be the 5th unlike vote: not used.
    assert exemplar_vote(sims(4) + [0.0], RULE).outcome == "product"


def test_too_few_exemplars_abstain():
    outcome = exemplar_vote(sims(10, k=10), RULE)
    assert (outcome.outcome, outcome.unlike, outcome.exemplars, outcome.needed) == ("abstained", 0, 10, 11)
    assert not outcome.fired
    assert exemplar_vote([], RULE).outcome == "abstained"


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
