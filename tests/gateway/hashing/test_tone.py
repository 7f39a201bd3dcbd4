"""gateway.hashing.tone and the rule's tone rescue: a brightness or contrast re-export differs from its original only by
a global tone map (small residual, a duplicate even where the colour histograms disagree); a painted-over region or
a recolour does not (large residual, still distinct)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from contract.categories_file import load_catalog
from gateway.hashing import (
    TONE_SIDE,
    HashVectors,
    ImageHashes,
    compute_hashes,
    rule_closeness,
    tone_residuals,
    tone_thumbnail,
    verify_pairs,
)
from tests.helpers import product_photo, squashed_thumbnail

DEDUP = load_catalog().default.dedup


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return product_photo(512, colour=(40, 90, 170), seed=3)


def residual(a: np.ndarray, b: np.ndarray) -> float:
    return float(tone_residuals(tone_thumbnail(a)[None], tone_thumbnail(b)[None])[0])


def test_the_tone_thumbnail_is_the_4x4_box_means_of_any_thumbnail(photo):
    t = squashed_thumbnail(photo)
    tone = tone_thumbnail(t)
    assert tone.shape == (TONE_SIDE, TONE_SIDE, 3) and tone.dtype == np.uint8
    expected = t.reshape(TONE_SIDE, 4, TONE_SIDE, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(tone - expected).max() <= 0.5 + 1e-9  # rounded
    for other in (Image.fromarray(t), t[..., 0].copy(), np.asarray(photo)):  # PIL, grey, another size
        assert tone_thumbnail(other).shape == (TONE_SIDE, TONE_SIDE, 3)


def test_tone_edits_leave_little_and_local_or_colour_edits_much(photo):
    original = squashed_thumbnail(photo)
    assert residual(original, original) == 0.0
    for edited in (
        ImageEnhance.Brightness(photo).enhance(1.1),
        ImageEnhance.Brightness(photo).enhance(0.8),
        ImageEnhance.Contrast(photo).enhance(1.3),
        ImageEnhance.Contrast(photo).enhance(0.75),
    ):
        assert residual(original, squashed_thumbnail(edited)) <= DEDUP.tone_residual_max / 2
    # Brightening clips the light edge of the product against white before the thumbnail averages it with the
    # background: no global map explains those edge pixels, so a strong brightening is rescued only in part.
    assert (
        residual(original, squashed_thumbnail(ImageEnhance.Brightness(photo).enhance(1.25)))
        > DEDUP.tone_residual_max / 2
    )
    painted = photo.copy()
    ImageDraw.Draw(painted).rectangle([200, 200, 290, 290], fill=(250, 200, 20))  # a badge on the product
    recoloured = Image.fromarray(np.asarray(photo)[..., ::-1].copy())  # blue product made red
    for different in (painted, recoloured):
        assert residual(original, squashed_thumbnail(different)) > 2 * DEDUP.tone_residual_max


def pair_vectors(a: np.ndarray, b: np.ndarray, with_thumbs: bool = True) -> HashVectors:
    hashes = [compute_hashes(t) for t in (a, b)]
    if not with_thumbs:
        hashes = [ImageHashes(h.phash, h.dhash_edge, h.hsv_hist) for h in hashes]
    return HashVectors.from_hashes(hashes)


def test_the_rescue_turns_a_colour_miss_into_a_duplicate_only_where_it_applies(photo):
    original, brighter = squashed_thumbnail(photo), squashed_thumbnail(ImageEnhance.Brightness(photo).enhance(1.1))
    i, j = np.array([0]), np.array([1])
    v = pair_vectors(original, brighter)
    hashes_agree = replace(DEDUP, phash_max_distance=64, dhash_edge_max_distance=64)
    # a chi-square threshold this pair misses, inside the rescue's window
    strict = replace(hashes_agree, hsv_chi2_max=1e-6, tone_chi2_max=1.0)
    assert verify_pairs(v, i, j, strict)[0]
    assert 0 < rule_closeness(v, i, j, strict)[0] <= 1.0  # the residual's share of its threshold
    assert not verify_pairs(v, i, j, replace(strict, tone_residual_max=0.0))[0]  # rescue off
    assert not verify_pairs(v, i, j, replace(strict, tone_chi2_max=1e-6))[0]  # chi-square past the window
    assert not verify_pairs(pair_vectors(original, brighter, with_thumbs=False), i, j, strict)[0]  # no thumbnails

    painted = photo.copy()
    ImageDraw.Draw(painted).rectangle([200, 200, 290, 290], fill=(250, 200, 20))
    assert not verify_pairs(pair_vectors(original, squashed_thumbnail(painted)), i, j, strict)[0]


def test_vectors_taken_by_rows_keep_their_tone_thumbnails(photo):
    original, brighter = squashed_thumbnail(photo), squashed_thumbnail(ImageEnhance.Brightness(photo).enhance(1.1))
    other = squashed_thumbnail(product_photo(512, colour=(20, 160, 60), seed=9))
    v = HashVectors.from_hashes([compute_hashes(t) for t in (other, original, brighter)])
    taken = v.take(np.array([1, 2]))
    assert np.array_equal(taken.tone(np.array([0, 1])), v.tone(np.array([1, 2])))
    arrays = HashVectors.of(v.phash, v.dhash_edge, v.hsv_hist, v.tone(np.arange(3)))
    assert np.array_equal(arrays.tone(np.array([2])), v.tone(np.array([2])))


def test_no_tone_evidence_from_a_flat_an_inverted_or_a_washed_out_pair(photo):
    original = squashed_thumbnail(photo)
    flat = np.full_like(original, 255)
    inverted = 255 - original
    assert residual(original, flat) == np.inf and residual(flat, original) == np.inf  # nothing to fit on
    assert residual(original, inverted) == np.inf  # a negative gain is no re-export
    # A badge on two washed-out copies: measured in the higher-contrast picture's grey levels, it still counts.
    painted = photo.copy()
    ImageDraw.Draw(painted).rectangle([200, 200, 290, 290], fill=(250, 200, 20))
    washed = [squashed_thumbnail(ImageEnhance.Contrast(p).enhance(0.4)) for p in (photo, painted)]
    assert residual(original, washed[1]) > DEDUP.tone_residual_max
    assert residual(original, washed[0]) <= DEDUP.tone_residual_max / 2  # the same copy without the badge
