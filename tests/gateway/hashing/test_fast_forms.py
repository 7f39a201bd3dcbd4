"""The fast compute_hashes, colour histogram and foreground mask equal their straightforward forms
(tests/gateway/hashing/reference.py) bit for bit, on a few hundred varied thumbnails: hashes, histogram bytes and
masks, so every tuned threshold keeps its meaning."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from gateway.hashing import colour_histogram, compute_hashes, dhash, dhash_edge, phash
from preprocessing.colour import TONE_PERCENTILES, _tone_range
from preprocessing.foreground import duplicate_mask, foreground_mask
from preprocessing.perceptual import _edge_enhanced_more, _median
from tests.gateway.hashing import reference
from tests.helpers import product_photo

THUMB = (128, 128)  # Triton's thumbnail: the whole picture squashed to a square


def as_thumbnail(img: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Through a JPEG of random quality, then squashed to the thumbnail as the preprocess model does."""
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(40, 96)))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").resize(THUMB, Image.Resampling.BILINEAR))


def products(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Product photos of random colour, size and framing (off-centre crops: non-square pictures, content at edges)."""
    thumbs = []
    for seed in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        photo = product_photo(224, colour, seed=seed, object_fraction=float(rng.uniform(0.3, 0.98)))
        left, top = (int(v) for v in rng.integers(0, 60, 2))
        right, bottom = (int(v) for v in rng.integers(164, 225, 2))
        thumbs.append(as_thumbnail(photo.crop((left, top, right, bottom)), rng))
    return thumbs


def drawings(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Flat shapes on backdrops of any colour (white, black, tinted), some touching the border."""
    thumbs = []
    for _ in range(count):
        backdrop = tuple(int(c) for c in rng.choice([0, 8, 128, 240, 250, 255, int(rng.integers(256))], 3))
        img = Image.new("RGB", (int(rng.integers(60, 300)), int(rng.integers(60, 300))), backdrop)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(0, 7))):
            x, y = (int(v) for v in rng.integers(-20, 250, 2))
            w, h = (int(v) for v in rng.integers(3, 150, 2))
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=fill)
        thumbs.append(as_thumbnail(img, rng) if rng.random() < 0.7 else np.asarray(img.resize(THUMB)))
    return thumbs


def fields(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Noise, smooth colour fields, greys (channel ties everywhere), saturated extremes and flat pictures."""
    thumbs = []
    for k in range(count):
        kind = k % 5
        if kind == 0:
            picture = rng.integers(0, 256, (*THUMB, 3))
        elif kind == 1:
            field = ndimage.gaussian_filter(rng.normal(size=(*THUMB, 3)), (float(rng.uniform(1, 12)),) * 2 + (0,))
            picture = (field - field.min()) / max(np.ptp(field), 1e-9) * 255
        elif kind == 2:
            picture = np.repeat(rng.integers(0, 256, (*THUMB, 1)), 3, axis=2)
        elif kind == 3:
            picture = rng.choice([0, 1, 127, 128, 254, 255], (*THUMB, 3))
        else:
            picture = np.broadcast_to(rng.integers(0, 256, 3), (*THUMB, 3))
        thumbs.append(np.ascontiguousarray(picture, dtype=np.uint8))
    return thumbs


@pytest.fixture(scope="module")
def thumbnails() -> list[np.ndarray]:
    rng = np.random.default_rng(13)
    return products(120, rng) + drawings(120, rng) + fields(60, rng)


def test_compute_hashes_equal_the_straightforward_form(thumbnails):
    for thumb in thumbnails:
        fast, plain = compute_hashes(thumb), reference.compute_hashes(thumb)
        assert (fast.phash, fast.dhash_edge) == (plain.phash, plain.dhash_edge)
        assert fast.hsv_hist.dtype == plain.hsv_hist.dtype == np.float32
        assert fast.hsv_hist.tobytes() == plain.hsv_hist.tobytes()
    # Other inputs take the conversion path: a PIL image (any mode) and a grey array.
    for thumb in thumbnails[:: len(thumbnails) // 12]:
        for given in (Image.fromarray(thumb), Image.fromarray(thumb).convert("L"), thumb[..., 1].copy()):
            fast, plain = compute_hashes(given), reference.compute_hashes(given)
            assert (fast.phash, fast.dhash_edge) == (plain.phash, plain.dhash_edge)
            assert fast.hsv_hist.tobytes() == plain.hsv_hist.tobytes()


def test_public_hashes_equal_the_straightforward_form(thumbnails):
    for thumb in thumbnails[::2]:
        img = Image.fromarray(thumb)
        assert phash(img) == reference.phash(img)
        assert dhash(img) == reference.dhash(img)
        assert dhash_edge(img) == reference.dhash_edge(img)


def test_colour_histogram_equals_the_straightforward_form_for_any_mask(thumbnails):
    rng = np.random.default_rng(5)
    for thumb in thumbnails[::3]:
        tiny = np.zeros(THUMB, bool)
        tiny.flat[rng.integers(0, tiny.size, int(rng.integers(1, 30)))] = True  # below and above the minimum
        for mask in (foreground_mask(thumb), None, tiny, rng.random(THUMB) < 0.3):
            fast, plain = colour_histogram(thumb, mask), reference.colour_histogram(thumb, mask)
            assert fast.tobytes() == plain.tobytes()


def test_foreground_mask_equals_the_float_form(thumbnails):
    for thumb in thumbnails:
        np.testing.assert_array_equal(foreground_mask(thumb), reference.foreground_mask(thumb))


def test_duplicate_mask_equals_its_definition(thumbnails):
    for thumb in thumbnails:
        np.testing.assert_array_equal(duplicate_mask(thumb), reference.duplicate_mask(thumb))
        np.testing.assert_array_equal(duplicate_mask(thumb, foreground_mask(thumb)), reference.duplicate_mask(thumb))


@pytest.mark.parametrize("seed", range(4))
def test_tone_range_is_np_percentile_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for trial in range(2000):
        n = int(rng.choice([1, 2, 3, 4, 5, 16, 17, 20, 21, int(rng.integers(1, 64)), int(rng.integers(1, 20_000))]))
        kind = trial % 3
        if kind == 0:
            values = rng.integers(0, 256, n)
        elif kind == 1:  # a few distinct values: the percentiles fall on runs of equal ones
            values = rng.choice(rng.integers(0, 256, 3), n)
        else:
            values = rng.integers(int(rng.integers(0, 256)), 256, n)
        luminance = values.astype(np.uint8)
        expected = np.percentile(luminance, TONE_PERCENTILES) / 255.0
        assert _tone_range(luminance) == (expected[0], expected[1])


def test_edge_filter_is_pils_bit_for_bit(thumbnails):
    rng = np.random.default_rng(9)
    greys = [Image.fromarray(thumb).convert("L") for thumb in thumbnails[::4]]
    # Every size class (below 3 px PIL's own filter is used) and values that clip at both ends.
    for height, width in ((1, 1), (2, 7), (3, 3), (3, 40), (17, 4), (128, 128), (61, 90)):
        greys.append(Image.fromarray(rng.choice([0, 1, 30, 200, 254, 255], (height, width)).astype(np.uint8)))
        greys.append(Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)))
    for grey in greys:
        fast, pil = _edge_enhanced_more(grey), grey.filter(ImageFilter.EDGE_ENHANCE_MORE)
        assert fast.mode == pil.mode == "L"
        np.testing.assert_array_equal(np.asarray(fast), np.asarray(pil))


def test_median_is_np_median():
    rng = np.random.default_rng(2)
    for n in (64, 64, 64, 63, 1, 2):
        values = rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e4])
        values[rng.integers(0, n, n // 4)] = values[0]  # ties
        assert _median(values) == np.median(values)
