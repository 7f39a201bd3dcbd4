"""Naming a picture's foreground with the basic colour terms (preprocessing.colour.colour_name_shares), what the
own-variant check reads when a request names the product's colour."""

from __future__ import annotations

import numpy as np
import pytest

from contract.colours import BASIC_COLOURS
from gateway.hashing import HSV_HIST_BINS, ImageHashes
from preprocessing.colour import NAMING_CHROMA_RAMP, colour_name_shares


def square(rgb, background=(255, 255, 255), side: int = 48) -> np.ndarray:
    picture = np.full((side, side, 3), background, np.uint8)
    picture[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = rgb
    return picture


@pytest.mark.parametrize(
    ("rgb", "term"),
    [
        ((15, 15, 15), "black"),
        ((128, 128, 128), "gray"),
        ((200, 30, 40), "red"),
        ((240, 130, 30), "orange"),
        ((240, 215, 50), "yellow"),
        ((40, 140, 60), "green"),
        ((25, 35, 110), "blue"),  # navy
        ((110, 50, 140), "purple"),
        ((240, 140, 180), "pink"),
        ((110, 70, 40), "brown"),
    ],
)
def test_a_plain_foreground_is_named_by_its_colour(rgb, term):
    shares = colour_name_shares(square(rgb))
    assert shares.shape == (len(BASIC_COLOURS),) and shares.dtype == np.float32
    assert BASIC_COLOURS[int(shares.argmax())] == term and shares.max() == pytest.approx(1.0)


def test_white_on_a_dark_background_and_the_background_left_out():
    shares = colour_name_shares(square((250, 250, 250), background=(0, 0, 0)))
    assert shares[BASIC_COLOURS.index("white")] == pytest.approx(1.0)


def test_a_mixed_foreground_is_shared_by_area():
    picture = square((200, 30, 40))
    picture[12:24, 12:36] = (25, 35, 110)  # the square's top half navy
    shares = dict(zip(BASIC_COLOURS, colour_name_shares(picture)))
    assert shares["blue"] == pytest.approx(0.5) and shares["red"] == pytest.approx(0.5)


def test_a_shade_near_the_chroma_boundary_is_split_not_flipped():
    """A pixel's weight moves from gray to blue across NAMING_CHROMA_RAMP: a slightly bluer shot of one shirt gets a
    slightly larger share, not all of it."""
    low, high = NAMING_CHROMA_RAMP
    grey = 140

    def bluish(chroma: float) -> float:
        step = round(chroma * 255)
        rgb = (grey, grey + step // 2, grey + step)  # hue 210 degrees
        return float(colour_name_shares(square(rgb))[BASIC_COLOURS.index("blue")])

    assert bluish(low - 0.02) == 0.0 and bluish(high + 0.02) == 1.0
    middle = bluish((low + high) / 2)
    assert 0.3 < middle < 0.7


def test_image_hashes_name_their_thumbnail_on_first_use():
    hashes = ImageHashes(0, 0, np.zeros(HSV_HIST_BINS, np.float32), thumb=square((25, 35, 110)))
    assert BASIC_COLOURS[int(hashes.colour_names.argmax())] == "blue"
    assert ImageHashes(0, 0, np.zeros(HSV_HIST_BINS, np.float32)).colour_names is None


def test_a_grey_or_rgba_thumbnail_is_named_as_rgb():
    empty = np.zeros(HSV_HIST_BINS, np.float32)
    grey = square((25, 35, 110))[..., 0]  # (h, w): a grey thumbnail, the square at level 25
    assert BASIC_COLOURS[int(ImageHashes(0, 0, empty, thumb=grey).colour_names.argmax())] == "black"
    rgba = np.dstack([square((25, 35, 110)), np.full((48, 48), 255, np.uint8)])
    assert BASIC_COLOURS[int(ImageHashes(0, 0, empty, thumb=rgba).colour_names.argmax())] == "blue"


def test_the_naming_table_names_pixels_as_the_rule_does_within_a_cell():
    """The 5-bit table against the rule on each pixel's own value: shares within a few hundredths on a photo-like
    spread of colours (each pixel is at most 4 levels from its cell's centre)."""
    from preprocessing.colour import _name_pixels

    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    every = np.ones((64, 64), dtype=bool)
    direct = _name_pixels(picture.reshape(-1, 3).T.astype(np.float32) / 255.0).mean(axis=0)
    assert np.abs(colour_name_shares(picture, every) - direct).max() < 0.02
