"""preprocessing.foreground: the one product/background split (preprocess box, hashes, training data, evaluation)."""

from __future__ import annotations

import numpy as np

from preprocessing.foreground import (
    BACKGROUND_TOLERANCE,
    border_colour,
    duplicate_mask,
    duplicate_tolerance,
    foreground_mask,
)


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


def reference_mask(rgb: np.ndarray, tolerance: int) -> np.ndarray:
    """The definition, in float64 with np.median: what the fast forms must equal bit for bit."""
    pixels = np.asarray(rgb)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return (np.abs(pixels.astype(np.float64) - np.median(border, axis=0)) > tolerance).any(axis=2)


def varied_pictures(count: int, seed: int = 0):
    """Noise around a random backdrop (so the border median lands on integers and halves, near 0 and 255), with
    blocks of other colours, at odd and even sizes."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        height, width = (int(n) for n in rng.integers(1, 70, 2))
        backdrop = rng.choice([0, 1, 12, 128, 240, 254, 255, int(rng.integers(256))], 3)
        spread = int(rng.choice([0, 2, 30, 255]))
        picture = np.clip(backdrop + rng.integers(-spread, spread + 1, (height, width, 3)), 0, 255)
        for _ in range(int(rng.integers(0, 4))):
            top, left = int(rng.integers(height)), int(rng.integers(width))
            picture[top : top + int(rng.integers(1, 30)), left : left + int(rng.integers(1, 30))] = rng.integers(
                256, size=3
            )
        yield picture.astype(np.uint8)


def test_fast_forms_equal_the_definition_bit_for_bit():
    for picture in varied_pictures(600):
        border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
        np.testing.assert_array_equal(border_colour(picture), np.median(border, axis=0))
        for tolerance in (BACKGROUND_TOLERANCE, 0, 1, 7, 254, 255, -1, -300):
            np.testing.assert_array_equal(foreground_mask(picture, tolerance), reference_mask(picture, tolerance))
        as_int32 = picture.astype(np.int32)  # other integer dtypes: the float32 form
        np.testing.assert_array_equal(foreground_mask(as_int32), reference_mask(picture, BACKGROUND_TOLERANCE))


def test_the_duplicate_mask_keeps_the_same_pixels_of_a_darkened_copy():
    """A product whose light parts sit 30 levels under a white backdrop: at 75% brightness they sit 22 under it,
    inside the fixed tolerance, while the duplicate mask's tolerance scales with the picture's contrast."""
    picture = np.full((40, 40, 3), 255, np.uint8)
    picture[5:35, 5:35] = 80  # the darkest part: 175 levels of contrast
    picture[10:30, 10:30] = 225  # light panel, 30 levels from the backdrop
    darker = np.rint(picture * 0.75).astype(np.uint8)
    assert foreground_mask(picture).sum() != foreground_mask(darker).sum()
    np.testing.assert_array_equal(duplicate_mask(picture), duplicate_mask(darker))
    np.testing.assert_array_equal(duplicate_mask(picture), foreground_mask(picture))
    assert duplicate_tolerance(darker) < duplicate_tolerance(picture) < BACKGROUND_TOLERANCE


def test_a_picture_of_full_contrast_keeps_the_shared_mask():
    picture = np.full((40, 40, 3), 245, np.uint8)
    picture[5:35, 5:35] = 0
    picture[0, :] = 255  # 10 levels of texture on the backdrop
    shared = foreground_mask(picture)
    assert duplicate_tolerance(picture) == BACKGROUND_TOLERANCE and duplicate_mask(picture, shared) is shared


def test_the_duplicate_tolerance_stays_above_noise_on_a_flat_picture():
    picture = np.full((20, 20, 3), 200, np.uint8)
    picture[5, 5] = 203  # JPEG-noise-sized differences only
    assert duplicate_tolerance(picture) == 8.0
    assert not duplicate_mask(picture).any()
