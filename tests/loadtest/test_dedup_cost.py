"""loadtest.dedup_cost: the per-product cost of the duplicate decision with the framing rescue on and off, and its
step counts, on thumbnails made here (the DALI step is the preprocessing's own, tested there)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from gateway.hashing import framing, rule
from loadtest.dedup_cost import StepCounter, product_costs
from tests.helpers import fabric_close_up, product_photo


def thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR))


def test_a_pad_copy_is_found_only_with_the_rescue_and_its_steps_are_counted():
    close_up = fabric_close_up(size=(500, 500))  # square: every picture here is taken as 800 x 800
    padded = ImageOps.expand(close_up, border=50, fill=(255, 255, 255))
    others = [thumb(product_photo(128, (40 * k, 90, 200 - 20 * k), seed=k)) for k in range(6)]
    thumbs = [thumb(close_up), thumb(padded), *others]
    searched, refine = rule.best_window, framing._refine
    (row,) = product_costs(thumbs, products=1, repeats=1)
    assert (row["off_duplicate_pairs"], row["on_duplicate_pairs"]) == (0, 1)
    assert row["searched"] >= row["refined"] >= row["windows"] >= 1
    assert row["on_ms"] > 0 and row["off_ms"] > 0
    assert (rule.best_window, framing._refine) == (searched, refine)  # the counters are gone


def test_the_counter_restores_the_functions_when_the_matrix_fails():
    searched = rule.best_window
    try:
        with StepCounter():
            raise RuntimeError("a failing product")
    except RuntimeError:
        pass
    assert rule.best_window is searched
