"""evaluation.variant_descriptors: the candidate colour descriptors of the own-variant check and the selection run
under another distance (small made-up images: no development data needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import ImageEnhance

from contract.categories_file import load_catalog
from evaluation import variant_descriptors as vd
from evaluation import variant_hero
from preprocessing.colour import colour_histogram
from preprocessing.foreground import foreground_mask
from tests.evaluation.test_variant_hero import images
from tests.helpers import product_photo


def photo(colour=(200, 40, 40), brightness: float = 1.0) -> np.ndarray:
    picture = product_photo(side=128, colour=colour, seed=3)
    return np.asarray(ImageEnhance.Brightness(picture).enhance(brightness))


def test_unit_weights_give_the_shipped_histogram_and_raw_keeps_brightness():
    rgb = photo()
    mask = foreground_mask(rgb)
    ones = np.ones(mask.shape)
    np.testing.assert_allclose(vd.weighted_histogram(rgb, mask, ones), colour_histogram(rgb, mask), atol=1e-6)
    rgb, dim = photo(colour=(170, 170, 170)), photo(colour=(170, 170, 170), brightness=0.5)  # grey: tone bins
    mask, dim_mask = foreground_mask(rgb), foreground_mask(dim)
    shipped = vd.chi2_matrix(np.stack([colour_histogram(rgb, mask), colour_histogram(dim, dim_mask)]))[0, 1]
    raw = vd.chi2_matrix(
        np.stack(
            [vd.weighted_histogram(rgb, mask, ones, tone=False), vd.weighted_histogram(dim, dim_mask, ones, False)]
        )
    )[0, 1]
    assert shipped < 0.02 < raw  # the tone normalisation undoes the dimming; the raw histogram does not


def test_weights_move_the_histogram_toward_the_weighted_pixels():
    rgb = np.full((64, 64, 3), 255, np.uint8)
    rgb[8:56, 8:56] = (40, 90, 200)  # a blue garment ...
    rgb[8:56, 8:20] = (200, 40, 40)  # ... with a red strip at its left edge
    mask = foreground_mask(rgb)
    plain = vd.weighted_histogram(rgb, mask, np.ones(mask.shape))
    centred = vd.weighted_histogram(rgb, mask, vd.centre_weight(mask, 0.25))
    red = vd.weighted_histogram(rgb, mask, (rgb[..., 0] > 100).astype(float))
    blue_bins = np.argsort(centred)[-2:]
    assert centred[blue_bins].sum() > plain[blue_bins].sum() > red[blue_bins].sum()


def test_centre_weight_peaks_at_the_content_box_centre():
    mask = np.zeros((64, 64), bool)
    mask[10:30, 20:60] = True
    weight = vd.centre_weight(mask, 0.25)
    assert np.unravel_index(np.argmax(weight), weight.shape) in {(19, 39), (19, 40), (20, 39), (20, 40)}
    assert weight[0, 0] < 0.01


def test_skin_box_takes_skin_not_grey_or_saturated_garments():
    pixels = np.array([[(224, 172, 140), (128, 128, 128), (255, 140, 0), (40, 90, 200)]], np.uint8)
    assert vd.skin_tone(pixels).tolist() == [[True, False, False, False]]


def test_dominant_colours_of_one_picture_coincide():
    rgb = photo()
    mask = foreground_mask(rgb)
    colours = vd.dominant_colours(rgb, mask)
    assert colours.shape == (3, 4)
    assert np.isclose(colours[:, 3].sum(), 1.0)
    assert vd.dominant_distance(colours, colours) == 0.0
    blue = photo(colour=(40, 90, 200))
    assert vd.dominant_distance(colours, vd.dominant_colours(blue, foreground_mask(blue))) > 0.3


def test_the_selection_runs_under_the_given_distance(tmp_path):
    v = images(tmp_path)  # s1 red front + back, blue front (histograms: the blue one far)
    red = list(variant_hero.trials(v, 1))[1]
    apparel = dataclasses.replace(load_catalog().get("apparel"), min_side=0)
    assert variant_hero.run_trial(v, red, apparel, "manifest", priorities=False)[0] is True
    misled = np.array([[0.0, 0.9, 0.1], [0.9, 0.0, 0.1], [0.1, 0.1, 0.0]])  # says the blue front is the consensus
    with vd.with_distance(misled):
        assert variant_hero.run_trial(v, red, apparel, "manifest", priorities=False)[0] is False
    assert vd.pair_auc(v, vd.chi2_matrix(v.hsv_hist), "catalog") == 1.0
