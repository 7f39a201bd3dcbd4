"""The placeholder mechanisms' pure parts: exemplar draws, the vote's order statistic and its threshold, and the
choice of the combined rule."""

from __future__ import annotations

import numpy as np

from evaluation.placeholder_data import Item
from evaluation.placeholder_mechanisms import (
    Signals,
    check_vote_rule,
    choose_combination,
    exemplar_similarities,
    pick_vote_threshold,
    rate,
    similarity_per_category,
    vote_per_category,
)


def test_exemplars_are_photos_of_the_category_from_other_groups():
    items = [Item("q", "unseen", "phrase:x", "gear")]
    items += [Item(f"g{i}", "photo", f"catalog:g{i}", "gear") for i in range(4)]
    items += [Item(f"a{i}", "photo", f"catalog:a{i}", "apparel") for i in range(4)]
    embeddings = np.eye(9, dtype=np.float32)
    embeddings[1:5, 0] = 0.5  # gear photos lean towards the query; apparel photos do not
    sims = exemplar_similarities(items, embeddings, k=3, seed=0)
    assert np.allclose(sims[0], 0.5)
    assert np.allclose(sims[1], 0.25)  # other gear photos only: itself (its own group) would give 1.25


def test_vote_threshold_keeps_the_false_positive_budget():
    kth = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    negatives = np.ones(10, bool)
    assert pick_vote_threshold(kth, negatives, 0.0) == 0.1  # nothing below the lowest negative
    threshold = pick_vote_threshold(kth, negatives, 0.2)
    assert threshold == 0.3 and rate(kth < threshold, negatives) == (0.2, 2, 10)
    assert pick_vote_threshold(kth, negatives, 1.0) == 1.0


def test_order_statistic_matches_the_gateway_rule():
    sims = np.random.default_rng(0).uniform(0, 1, size=(400, 11)).astype(np.float32)
    check_vote_rule(sims, np.sort(sims, axis=1)[:, 4], exemplars=11, min_votes=5)


def _signals(head: np.ndarray | None) -> Signals:
    # 20 photos (similarity 0.6-0.8 to their exemplars), 10 known and 10 unseen placeholders (0.2-0.4), all calibration
    kinds = np.array(["photo"] * 20 + ["known"] * 10 + ["unseen"] * 10)
    kth = np.concatenate([np.linspace(0.6, 0.8, 20), np.linspace(0.2, 0.4, 20)])
    return Signals(
        kinds=kinds,
        categories=np.array(["grocery"] * 40),
        truth=kinds != "photo",
        head_seen=np.zeros(40, bool),
        calibration=np.ones(40, bool),
        test=np.ones(40, bool),
        library_fires=np.zeros(40, bool),
        head=head,
        kth_lowest=kth,
    )


def test_combination_catches_every_placeholder_within_the_budget():
    signals = _signals(head=np.concatenate([np.zeros(20), np.full(20, 0.01)]))
    s, h = choose_combination(signals, max_fpr=0.0, vote_fpr=0.05)
    flags = (signals.kth_lowest < s) & (signals.head >= h)
    assert flags[20:].all() and not flags[:20].any()
    assert (s, h) == (0.41, 0.0)  # ties: the lowest head floor, then the lowest similarity that catches them all


def test_combination_without_a_head_is_the_vote_alone():
    s, h = choose_combination(_signals(head=None), max_fpr=0.0, vote_fpr=0.05)
    assert h == 0.0 and 0.4 < s <= 0.6
    per_category = vote_per_category(_signals(head=None), max_fpr=0.0)
    assert per_category["grocery"]["recall"] == (1.0, 20, 20) and per_category["grocery"]["fpr"][1] == 0


def test_a_category_with_alike_photos_gets_a_stricter_similarity_of_its_own():
    # apparel photos 0.70-0.90 alike, their placeholders up to 0.50; grocery photos 0.30-0.80, placeholders up to 0.25
    # (so the pooled vote budget is spent on grocery's least alike photos); gear: too few photos to choose on.
    parts = [
        ("apparel", "photo", np.linspace(0.70, 0.90, 120)),
        ("apparel", "known", np.linspace(0.30, 0.50, 10)),
        ("apparel", "unseen", np.linspace(0.30, 0.50, 10)),
        ("grocery", "photo", np.linspace(0.30, 0.80, 120)),
        ("grocery", "known", np.linspace(0.10, 0.25, 10)),
        ("grocery", "unseen", np.linspace(0.10, 0.25, 10)),
        ("gear", "photo", np.linspace(0.50, 0.60, 20)),
        ("gear", "known", np.linspace(0.10, 0.20, 5)),
    ]
    categories = np.concatenate([[cat] * len(v) for cat, _, v in parts])
    kinds = np.concatenate([[kind] * len(v) for _, kind, v in parts])
    n = len(kinds)
    signals = Signals(
        kinds=kinds,
        categories=categories,
        truth=kinds != "photo",
        head_seen=np.zeros(n, bool),
        calibration=np.ones(n, bool),
        test=np.ones(n, bool),
        library_fires=np.zeros(n, bool),
        head=np.where(kinds == "photo", 0.0, 0.3),
        kth_lowest=np.concatenate([v for _, _, v in parts]),
    )
    pooled, h = choose_combination(signals, max_fpr=0.005, vote_fpr=0.05)
    chosen = similarity_per_category(signals, max_fpr=0.005, vote_fpr=0.05, h_lo=h)
    assert set(chosen) == {"apparel", "grocery"}  # gear: 20 photos and no unseen placeholders
    assert chosen["apparel"] > 0.50 >= pooled  # every apparel placeholder, which the pooled value misses
    assert chosen["grocery"] <= 0.30  # grocery's own photos keep it low
