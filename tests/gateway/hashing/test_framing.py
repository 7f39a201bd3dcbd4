"""gateway.hashing.framing and the rule's framing rescue: a crop or pad copy of a close-up (the product fills the frame,
so the content box cannot follow the re-framing) is a duplicate on the window the two pictures share; a detail cut
from the photo, or another product, is not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps

from contract.categories_file import load_catalog
from gateway.hashing import (
    HashVectors,
    ImageHashes,
    chi2_distance,
    compute_hashes,
    framed_signals,
    rule_closeness,
    verify_pairs,
)
from gateway.hashing.framing import CENTRE_CHI2_MAX, best_window
from tests.helpers import fabric_close_up, squashed_thumbnail

DEDUP = load_catalog().default.dedup
OFF = replace(DEDUP, framing_min_share=0.0)
FIRST, SECOND = np.array([0]), np.array([1])


def hashes(img: Image.Image) -> ImageHashes:
    return compute_hashes(squashed_thumbnail(img), img.size)


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return fabric_close_up()


def copies(original: Image.Image) -> dict[str, Image.Image]:
    width, height = original.size
    square = Image.new("RGB", (height, height), (255, 255, 255))
    square.paste(original, ((height - width) // 2, 0))
    return {
        "crop": original.crop((55, 65, width - 10, height - 10)),  # into the print: its content box moves
        "pad": ImageOps.expand(original, border=60, fill=(255, 255, 255)),
        "square canvas": square,
    }


def under_noise(img: Image.Image, amplitude: float) -> Image.Image:
    """`img` plus low-frequency noise (colour blobs ~25 px wide, up to about +-amplitude * 3 grey levels): what the
    thumbnails' averaging keeps, like another shot of the same pose."""
    rng = np.random.default_rng(1)
    blobs = Image.fromarray(rng.integers(0, 256, (24, 20), dtype=np.uint8)).resize(img.size, Image.Resampling.BICUBIC)
    noise = (np.asarray(blobs, np.float64) - 127) * (amplitude / 40)
    return Image.fromarray(np.clip(np.asarray(img, np.float64) + noise[..., None], 0, 255).astype(np.uint8))


def pair(a: Image.Image, b: Image.Image) -> HashVectors:
    return HashVectors.from_hashes([hashes(a), hashes(b)])


def test_crop_and_pad_copies_of_a_close_up_are_duplicates_only_with_the_rescue(original):
    assert DEDUP.framing_min_share > 0  # on in the shipped categories file
    for name, copy in copies(original).items():
        v = pair(original, copy)
        assert not verify_pairs(v, FIRST, SECOND, OFF)[0], name  # the content box cannot follow: the hashes move
        assert verify_pairs(v, FIRST, SECOND, DEDUP)[0], name
        assert verify_pairs(pair(copy, original), FIRST, SECOND, DEDUP)[0], name  # either order
        assert 0 <= rule_closeness(v, FIRST, SECOND, DEDUP)[0] <= 1.0, name  # the window's signals
        assert rule_closeness(v, FIRST, SECOND, OFF)[0] > 1.0, name


def test_a_detail_cut_from_the_photo_or_another_product_stays_distinct(original):
    detail = original.crop((100, 150, 350, 450))  # half the frame on each axis: another picture of the product
    other = fabric_close_up(seed=8)
    for name, img in (("detail", detail), ("other product", other)):
        assert not verify_pairs(pair(original, img), FIRST, SECOND, DEDUP)[0], name
    # The category's framing_min_share bounds the window: a pad making the picture 80% of the canvas is one at 0.7,
    # none at 0.9.
    padded = ImageOps.expand(original, border=round(0.125 * original.width), fill=(255, 255, 255))
    assert verify_pairs(pair(original, padded), FIRST, SECOND, DEDUP)[0]
    assert not verify_pairs(pair(original, padded), FIRST, SECOND, replace(DEDUP, framing_min_share=0.9))[0]


def test_the_window_found_is_where_the_copy_sits(original):
    width, height = original.size
    crop = copies(original)["crop"]
    a, b = hashes(original), hashes(crop)
    found = best_window(a.pyramid, a.size, b.pyramid, b.size, DEDUP.framing_min_share)
    assert found is not None
    window, a_is_large = found
    assert a_is_large  # the crop is a window of the original
    expected = (55 / width, 65 / height, (width - 65) / width, (height - 75) / height)
    got = (window.x0, window.y0, window.width, window.height)
    assert np.allclose(got, expected, atol=2.5 / 128), (got, expected)
    assert window.correlation > 0.95

    pad = copies(original)["pad"]
    c = hashes(pad)
    window, a_is_large = best_window(a.pyramid, a.size, c.pyramid, c.size, DEDUP.framing_min_share)
    assert not a_is_large  # the original is a window of the padded copy
    expected = (60 / pad.width, 60 / pad.height, width / pad.width, height / pad.height)
    assert np.allclose((window.x0, window.y0, window.width, window.height), expected, atol=2.5 / 128)


def test_no_rescue_without_thumbnails_or_sizes(original):
    crop = copies(original)["crop"]
    without_sizes = [compute_hashes(squashed_thumbnail(img)) for img in (original, crop)]
    v = HashVectors.from_hashes(without_sizes)
    assert v.images is None and v.tone is not None  # the tone rescue needs no size
    assert not verify_pairs(v, FIRST, SECOND, DEDUP)[0]
    bare = [ImageHashes(h.phash, h.dhash_edge, h.hsv_hist) for h in without_sizes]
    assert not verify_pairs(HashVectors.from_hashes(bare), FIRST, SECOND, DEDUP)[0]


def test_vectors_taken_by_rows_keep_their_images(original):
    crop = copies(original)["crop"]
    other = fabric_close_up(seed=9)
    v = HashVectors.from_hashes([hashes(img) for img in (other, original, crop)])
    taken = v.take(np.array([1, 2]))
    assert [h.size for h in taken.images(np.array([0, 1]))] == [original.size, crop.size]
    assert verify_pairs(taken, FIRST, SECOND, DEDUP)[0]
    arrays = HashVectors.of(v.phash, v.dhash_edge, v.hsv_hist, images=v.images(np.arange(3)))
    assert verify_pairs(arrays, np.array([1]), np.array([2]), DEDUP)[0]


@pytest.mark.parametrize("second_size", [(1000, 1000), (1000, 980), (1000, 940), (960, 1000)])
def test_a_whole_picture_window_is_not_a_second_chance(second_size):
    """Two look-alike shirts (a stripe apart) that the rule rejects correlate best as they are, whole, whatever their
    aspects: no window is compared again (a re-sampled second look, or the window a slightly different aspect forces,
    could pass a pair the rule rejected)."""
    from tests.helpers import product_photo

    shirts = [
        np.asarray(product_photo(128, colour, seed=seed)) for colour, seed in (((20, 90, 200), 1), ((0, 90, 200), 51))
    ]
    v = HashVectors.from_hashes([compute_hashes(shirts[0], (1000, 1000)), compute_hashes(shirts[1], second_size)])
    assert not verify_pairs(v, FIRST, SECOND, OFF)[0]
    assert not verify_pairs(v, FIRST, SECOND, DEDUP)[0]
    assert all(np.isinf(s[0]) for s in framed_signals(v, FIRST, SECOND, DEDUP))


def test_a_recoloured_copy_is_not_even_searched(original):
    """The prefilter: a colourway re-coloured from the same shot (channels swapped) and cropped has other colours in
    its middle than the original, so no window is searched for (the cost of the rescue goes to pairs that could be
    copies)."""
    width, height = original.size
    recoloured = Image.fromarray(np.asarray(original)[..., ::-1].copy()).crop((55, 65, width - 10, height - 10))
    a, b = hashes(original), hashes(recoloured)
    assert chi2_distance(a.centre, b.centre) > CENTRE_CHI2_MAX
    assert all(np.isinf(s[0]) for s in framed_signals(pair(original, recoloured), FIRST, SECOND, DEDUP))
    crop = hashes(copies(original)["crop"])
    assert chi2_distance(a.centre, crop.centre) <= CENTRE_CHI2_MAX  # the copy passes it


def test_a_deep_cut_is_a_zoom_unless_what_it_leaves_out_is_plain_canvas(original):
    """A window under CROP_MIN_SHARE of the larger picture on an axis counts only where the rest of the larger picture
    is a plain pad: a 78% cut into the picture is a zoom on a part of it (a view a shop shows on purpose), a 78%
    window inside a white pad is the whole picture re-framed."""
    width, height = original.size
    zoom = original.crop((0, 0, round(0.78 * width), height))  # the left 78%: the rest of the print is cut away
    assert not verify_pairs(pair(original, zoom), FIRST, SECOND, DEDUP)[0]
    margin = round(0.14 * width)  # the picture is 78% of the padded width
    padded = ImageOps.expand(original, border=margin, fill=(255, 255, 255))
    assert verify_pairs(pair(original, padded), FIRST, SECOND, DEDUP)[0]


def test_the_search_budget_takes_the_pairs_whose_middles_agree_best(original):
    """framed_signals searches at most `budget` pairs, closest middles first: one request's cost is bounded."""
    crop = copies(original)["crop"]
    v = HashVectors.from_hashes([hashes(img) for img in (original, crop, fabric_close_up(seed=9))])
    i, j = np.array([2, 0]), np.array([1, 1])  # (another print, crop), then (original, crop): the copy
    assert np.isfinite(framed_signals(v, i, j, DEDUP)[0][1])
    assert np.isfinite(framed_signals(v, i, j, DEDUP, budget=1)[0][1])  # the copy's middles agree best
    assert all(np.isinf(s).all() for s in framed_signals(v, i, j, DEDUP, budget=0))


def test_a_window_that_correlates_poorly_once_refined_is_not_hashed(original, monkeypatch):
    """A window must still correlate at MIN_REFINED_CORRELATION after each refinement: a crop under low-frequency
    noise (another shot in the same pose looks like this to the search) correlates ~0.91 at 128 px, so the search
    ends there, before the hashes; with a lower bar the same window is found."""
    from gateway.hashing import framing

    a, b = hashes(original), hashes(under_noise(copies(original)["crop"], 9.5))
    assert best_window(a.pyramid, a.size, b.pyramid, b.size, DEDUP.framing_min_share) is None
    shipped = framing.MIN_REFINED_CORRELATION
    monkeypatch.setattr(framing, "MIN_REFINED_CORRELATION", 0.9)
    window, a_is_large = best_window(a.pyramid, a.size, b.pyramid, b.size, DEDUP.framing_min_share)
    assert a_is_large
    assert 0.9 <= window.correlation < shipped
    width, height = original.size
    assert np.allclose((window.x0, window.y0), (55 / width, 65 / height), atol=2.5 / 128)  # where the crop sits


def test_a_window_s_colours_are_taken_only_where_both_hashes_agree(original, monkeypatch):
    """The colour histogram costs more than both hashes: framed_signals takes it for a window (and for the smaller
    picture's interior) only once the window's hashes agree."""
    import preprocessing.perceptual as perceptual

    v = pair(
        original, under_noise(copies(original)["crop"], 4)
    )  # a few pHash bits move; the whole pictures hashed here
    histograms = []
    counted = perceptual.colour_histogram
    monkeypatch.setattr(perceptual, "colour_histogram", lambda *a: histograms.append(1) or counted(*a))
    phash, _, chi2, _ = framed_signals(v, FIRST, SECOND, replace(DEDUP, phash_max_distance=0))
    assert phash[0] > 0 and np.isinf(chi2[0]) and not histograms
    phash, _, chi2, _ = framed_signals(v, FIRST, SECOND, DEDUP)
    assert phash[0] <= DEDUP.phash_max_distance and np.isfinite(chi2[0]) and len(histograms) == 2  # window, interior


def test_searching_many_pairs_at_once_finds_what_each_search_alone_does(original):
    """best_windows runs the coarse level of all its pairs together (one FFT for the pairs of one set of window
    sizes, each picture's caches made once): the same windows, to the bit, as searching pair by pair on fresh
    pyramids, whatever the mix of aspects, copies and strangers, and a picture of no size."""
    from gateway.hashing.framing import GreyPyramid, best_windows

    pictures = [original, *copies(original).values(), fabric_close_up(seed=8), original.crop((40, 0, 400, 380))]
    thumbs = [squashed_thumbnail(img) for img in pictures]
    sizes = [img.size for img in pictures] + [(0, 300)]
    thumbs.append(thumbs[0])
    pairs = [(a, b) for a in range(len(thumbs)) for b in range(len(thumbs)) if a != b]

    def pyramids():
        return [GreyPyramid(t) for t in thumbs]

    alone = []
    for a, b in pairs:
        fresh = pyramids()
        alone.append(best_window(fresh[a], sizes[a], fresh[b], sizes[b], DEDUP.framing_min_share))
    shared = pyramids()
    together = best_windows([(shared[a], sizes[a], shared[b], sizes[b]) for a, b in pairs], DEDUP.framing_min_share)
    assert together == alone
    assert sum(found is not None for found in alone) >= 6  # the copies, both ways: the test compares real windows
