"""loadtest.dedup_cost: the per-product cost of the duplicate decision with the framing rescue on and off, and its
step counts, on thumbnails made here (the DALI step is the preprocessing's own, tested there)."""

from __future__ import annotations

from PIL import ImageOps

from gateway.hashing import framing, rule
from loadtest.dedup_cost import StepCounter, product_costs
from tests.helpers import fabric_close_up, product_photo, squashed_thumbnail


def test_a_pad_copy_is_found_only_with_the_rescue_and_its_steps_are_counted():
    close_up = fabric_close_up(size=(500, 500))  # square: every picture here is taken as 800 x 800
    padded = ImageOps.expand(close_up, border=50, fill=(255, 255, 255))
    others = [squashed_thumbnail(product_photo(128, (40 * k, 90, 200 - 20 * k), seed=k)) for k in range(6)]
    thumbs = [squashed_thumbnail(close_up), squashed_thumbnail(padded), *others]
    searched, refine = rule.best_windows, framing._refine
    (row,) = product_costs(thumbs, products=1, repeats=1)
    assert (row["off_duplicate_pairs"], row["on_duplicate_pairs"]) == (0, 1)
    assert row["searched"] >= row["refined"] >= row["windows"] >= 1
    assert (rule.best_windows, framing._refine) == (searched, refine)  # the counters are gone


def test_the_counter_restores_the_functions_when_its_block_fails():
    searched, refine = rule.best_windows, framing._refine
    try:
        with StepCounter():
            assert rule.best_windows is not searched and framing._refine is not refine
            raise RuntimeError("a failing product")
    except RuntimeError:
        pass
    assert (rule.best_windows, framing._refine) == (searched, refine)
