"""gateway.decisions.search: partition names, the index partition of a catalog image, the category cascade."""

import numpy as np

from contract.categories import CategoryHead
from gateway.decisions.search import (
    IndexPlacement,
    index_placements,
    partition_allowed,
    partition_name,
    search_partitions,
    search_vector,
)

HEAD = CategoryHead(classes=("fruit", "gear"), routes={"fruit": "default", "gear": "apparel"}, min_confidence=0.9)
FRUITY, GEARY = np.array([0.8, 0.2]), np.array([0.3, 0.7])


def test_partition_names_are_trimmed_lower_case_and_must_be_head_classes():
    assert partition_name(" Fruit ") == "fruit"
    assert partition_name("  ") is None and partition_name(None) is None
    assert partition_allowed("fruit", HEAD) and partition_allowed(None, HEAD)
    assert not partition_allowed("toasters", HEAD)
    assert partition_allowed("toasters", None)  # without a head any partition is a caller's choice


def test_a_given_partition_wins_else_the_products_images_decide_together():
    unsure = np.array([0.45, 0.55])
    placements = index_placements(
        ["p1", "p1", "p1", "p2"], [None, None, "gear", None], [FRUITY, unsure, FRUITY, GEARY], HEAD
    )
    # p1's two unlabelled images average to fruit (0.625), untrusted or not; its labelled image keeps its label and
    # does not vote.
    assert placements == [
        IndexPlacement("fruit", "predicted"),
        IndexPlacement("fruit", "predicted"),
        IndexPlacement("gear", "request"),
        IndexPlacement("gear", "predicted"),
    ]


def test_without_head_output_an_unlabelled_image_has_no_partition():
    assert index_placements(["p1", "p2"], [None, "fruit"], [None, None], HEAD) == [
        None,
        IndexPlacement("fruit", "request"),
    ]
    assert index_placements(["p1"], [None], [FRUITY], None) == [None]


PROBS = {"fruit": 0.7, "vegetables": 0.2, "packages": 0.1}


def test_cascade_searches_the_most_likely_partitions():
    plan = search_partitions(
        None, PROBS, ["packages", "fruit", "vegetables", "apparel"], cascade=True, top_categories=2
    )
    assert (plan.category, plan.source, plan.partitions) == ("fruit", "predicted", ("fruit", "vegetables"))


def test_cascade_skips_partitions_that_hold_nothing():
    plan = search_partitions(None, PROBS, ["packages", "apparel"], cascade=True, top_categories=1)
    assert (plan.category, plan.partitions) == ("fruit", ("packages",))  # fruit predicted, but nothing indexed there
    assert search_partitions(None, PROBS, [], cascade=True, top_categories=2).partitions == ()


def test_an_unsure_head_makes_the_cascade_search_more_partitions():
    available = ["packages", "fruit", "vegetables", "apparel"]
    assert search_partitions(None, PROBS, available, True, 1, min_confidence=0.6).partitions == ("fruit",)
    assert search_partitions(None, PROBS, available, True, 1, min_confidence=0.85).partitions == ("fruit", "vegetables")
    every = search_partitions(None, PROBS, available, True, 1, min_confidence=1.0).partitions
    assert every == ("fruit", "vegetables", "packages")  # apparel has no probability: never reached
    # only partitions that hold images count towards the confidence
    assert search_partitions(None, PROBS, ["vegetables", "packages"], True, 1, min_confidence=0.25).partitions == (
        "vegetables",
        "packages",
    )
    assert search_partitions(None, PROBS, available, True, 2, min_confidence=0.5).partitions == ("fruit", "vegetables")


def test_requested_category_wins_and_flat_searches_everything():
    requested = search_partitions(" Packages ", PROBS, ["fruit"], cascade=True, top_categories=1)
    assert (requested.category, requested.source, requested.partitions) == ("packages", "request", ("packages",))
    flat = search_partitions(None, PROBS, ["apparel", "packages", "fruit"], cascade=False, top_categories=1)
    assert flat.partitions == ("fruit", "packages", "apparel") and flat.category == "fruit"
    no_head = search_partitions(None, None, ["gear", "apparel"], cascade=True, top_categories=1)
    assert (no_head.category, no_head.source, no_head.partitions) == (None, "none", ("apparel", "gear"))


def test_the_search_vector_is_the_search_heads_output_else_the_embedding():
    embedding, searched = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert search_vector(embedding, searched) is searched
    assert search_vector(embedding, None) is embedding
    assert search_vector(None, None) is None
