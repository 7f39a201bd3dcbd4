"""The int8-vs-fp32 report's pure parts: deltas in points, the rows read from reports shaped like the committed
heads/*.json, the 0.5-point rule, the markdown, the agreement summaries (no model, no ../shared/data)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from build_engines.artifacts import HEADS_DIR
from contract.tensors import CATEGORY_HEAD_OUTPUT, EMBEDDING, QUALITY_SCORES, type_probs_output
from evaluation.vision_precision_report import (
    Row,
    committed_reports,
    compare_with_committed,
    cosine_summary,
    delta_points,
    flag_agreement,
    markdown_table,
    moved_beyond,
    output_agreement,
    pick,
    reproduction_note,
    side_tables,
    table_rows,
    top1_agreement,
    verdict,
)
from evaluation.vision_runtime import batched


@pytest.fixture(scope="module")
def cards() -> dict:
    cards = committed_reports(HEADS_DIR)
    if set(cards) != {"quality", "category", "type_apparel"}:
        pytest.skip("the committed quality, category and type_apparel cards are needed")
    # The evaluation reports the out-of-distribution check as a share (the card has a count).
    cards["category"]["out_of_distribution"]["trusted_share"] = 5 / 6
    return cards


def test_delta_is_in_percentage_points_and_missing_values_give_none():
    assert delta_points(0.9549, 0.9501) == -0.48
    assert delta_points(0.5, 0.5) == 0.0
    assert delta_points(None, 0.5) is None and delta_points(0.5, None) is None


def test_pick_walks_dicts_and_lists_and_misses_quietly():
    report = {"a": {"floors": [{"kept": 0.9}, {"kept": 0.8}]}}
    assert pick(report, ("a", "floors", 1, "kept")) == 0.8
    assert pick(report, ("a", "floors", 2, "kept")) is None
    assert pick(report, ("a", "missing")) is None
    assert pick(report, ("a", "floors", "kept")) is None


def test_every_row_reads_the_cards_and_only_a_moved_metric_is_flagged(cards):
    int8 = copy.deepcopy(cards)
    int8["type_apparel"]["validation"]["accuracy"] -= 1 / 115  # one of 115 validation images flipped
    rows = table_rows({"fp32": cards, "int8": int8})

    missing = [r.metric for r in rows if r.fp32 is None or r.int8 is None]
    # The two unlearned apparel types are never predicted: their precision is undefined in the card too.
    assert missing == ["type_apparel side precision (3 images)", "type_apparel lifestyle precision (2 images)"]
    metrics = " ".join(r.metric for r in rows)
    for expected in ("quality blur ROC-AUC (test", "category accuracy", "hero", "unseen real family", "requests"):
        assert expected in metrics
    moved = moved_beyond(rows)
    assert [r.metric for r in moved] == ["type_apparel accuracy, all types (validation, 115 images)"]
    assert moved[0].delta == pytest.approx(-0.87)
    assert verdict(rows).splitlines() == [
        "1 MODELS.md metric(s) moved by more than 0.5 points:",
        "- type_apparel accuracy, all types (validation, 115 images): 0.9217 -> 0.9130 (-0.87)",
        "0 other reported metric(s) moved by more than 0.5 points.",
    ]
    assert "0 MODELS.md metric(s)" in verdict(rows, limit=1.0)


def test_rows_the_card_does_not_quote_are_kept_apart(cards):
    rows = table_rows({"fp32": cards, "int8": cards})
    off_card = {r.metric for r in rows if not r.on_card}
    assert any("calibration" in m for m in off_card) and not any("(test," in m for m in off_card)
    assert "category kept at confidence 0.9" in off_card and "category kept at confidence 0.6" not in off_card
    assert all(r.on_card for r in rows if r.metric.startswith("type_apparel"))


def test_the_fp32_column_is_compared_with_the_cards(cards):
    rows = table_rows({"fp32": cards, "int8": cards})
    same = compare_with_committed(rows, cards)
    assert same["differ"] == [] and same["compared"] > 40
    shifted = [Row(r.metric, r.path, r.fp32 + 0.01, r.int8) if "routing" in r.metric else r for r in rows]
    differ = compare_with_committed(shifted, cards)["differ"]
    assert differ and all("routing" in d["metric"] for d in differ)
    assert "routing" in reproduction_note(compare_with_committed(shifted, cards))


def test_markdown_table_signs_deltas_and_dashes_missing_values():
    table = markdown_table([Row("a (n)", ("a",), 0.95, 0.9443), Row("b", ("b",), None, 0.5)])
    assert table.splitlines() == [
        "| metric | fp32 | int8 | delta (points) |",
        "| --- | --- | --- | --- |",
        "| a (n) | 0.9500 | 0.9443 | -0.57 |",
        "| b | - | 0.5000 | - |",
    ]


def test_cosine_summary_of_equal_and_orthogonal_rows():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    summary = cosine_summary(a, b)
    assert summary["n"] == 3 and summary["min"] == 0.0 and summary["p50"] == 1.0
    assert summary["mean"] == pytest.approx(2 / 3, abs=1e-5)


def test_agreement_counts_changed_decisions_only():
    fp32 = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    int8 = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    assert top1_agreement(fp32, int8) == {"n": 3, "agreement": 0.6667, "differ": 1}
    scores = np.array([[0.49, 0.1, 0.9], [0.2, 0.7, 0.1]])
    flags = flag_agreement(scores, scores + [[0.02, 0.0, 0.0], [0.0, -0.3, 0.0]])
    assert flags["blur"]["differ"] == 1 and flags["small_object"]["differ"] == 1 and flags["placeholder"]["differ"] == 0


def test_output_agreement_covers_every_head_and_the_side_tables_show_it():
    rng = np.random.default_rng(0)
    fp32 = {
        EMBEDDING.name: rng.normal(size=(4, 8)),
        QUALITY_SCORES.name: rng.uniform(size=(4, 3)),
        CATEGORY_HEAD_OUTPUT: rng.uniform(size=(4, 5)),
        type_probs_output("apparel"): rng.uniform(size=(4, 5)),
    }
    report = output_agreement(fp32, fp32)
    assert report["embedding_cosine"]["min"] == pytest.approx(1.0)
    assert set(report["top1"]) == {CATEGORY_HEAD_OUTPUT, type_probs_output("apparel")}
    assert report["quality_max_abs_difference"] == 0.0
    speed = {
        p: {"file_mb": 5.0, "batch_8_images_per_s": 100.0, "batch_32_images_per_s": 120.0} for p in ("fp32", "int8")
    }
    text = side_tables(report, speed)
    assert "| vision int8 | 5.0 | 100.0 | 120.0 |" in text and "batch 32, images/s" in text
    assert f"`{CATEGORY_HEAD_OUTPUT}` top-1, every image | 1.0000 | 0 of 4" in text


def test_batched_keeps_order_and_the_short_tail():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []
