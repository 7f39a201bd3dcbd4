"""preprocessing.foreground: the one product/background split (preprocess box, hashes, training data, evaluation)."""

from __future__ import annotations

import numpy as np

from preprocessing.foreground import BACKGROUND_TOLERANCE, border_colour, foreground_mask


def test_a_rectangle_on_any_uniform_background():
    for background in ((255, 255, 255), (0, 0, 0), (120, 30, 200)):
        picture = np.full((40, 60, 3), background, np.uint8)
        picture[10:20, 5:30] = (np.array(background) + 128) % 256
        expected = np.zeros((40, 60), bool)
        expected[10:20, 5:30] = True
        np.testing.assert_array_equal(foreground_mask(picture), expected)


def test_the_tolerance_is_strict_and_per_channel():
    picture = np.full((10, 10, 3), 200, np.uint8)
    picture[2, 2] = (200 + BACKGROUND_TOLERANCE, 200, 200)  # at the tolerance: background
    picture[3, 3] = (200, 200 - BACKGROUND_TOLERANCE - 1, 200)  # one channel beyond it: foreground
    picture[4, 4] = (200 + 20, 200 - 20, 200 + 20)  # every channel within it: background
    assert np.argwhere(foreground_mask(picture)).tolist() == [[3, 3]]
    assert foreground_mask(picture, tolerance=19)[4, 4]


def test_border_colour_is_the_median_and_may_be_a_half():
    picture = np.full((4, 4, 3), 10, np.uint8)
    picture[2:] = 11  # the 16 border samples (corners count twice): 8 at 10, 8 at 11
    assert border_colour(picture).tolist() == [10.5, 10.5, 10.5]
    picture[1, 1] = 35  # 24.5 from the border colour: foreground
    picture[2, 2] = 34  # 23.5: background
    assert np.argwhere(foreground_mask(picture)).tolist() == [[1, 1]]
