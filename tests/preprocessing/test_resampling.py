"""The cpu profile's host copies (preprocessing.resampling) against DALI's (preprocessing.pipeline's graph): the same
placement to the pixel, the same values to rounding. (tests/build_engines/test_dali_model.py compares the two
profiles' whole preprocessing.)"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("nvidia.dali")

from contract.tensors import BACKBONE_SIDE, THUMB_SIDE  # noqa: E402
from preprocessing.pipeline import MEAN, PAD_WHITE, STD  # noqa: E402
from preprocessing.resampling import backbone_copies, centring_offset, longer_side_size  # noqa: E402


def dali_copies(pictures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from nvidia.dali import fn, pipeline_def, types

    from preprocessing.pipeline import backbone_copies_graph

    @pipeline_def(batch_size=len(pictures), num_threads=1, device_id=None, prefetch_queue_depth=1)
    def copies():
        return backbone_copies_graph(fn.external_source(name="RGB", dtype=types.UINT8, ndim=3, layout="HWC"))

    pipe = copies()
    pipe.build()
    pipe.feed_input("RGB", pictures)
    pixels, thumbs = pipe.run()
    return np.stack([np.asarray(p) for p in pixels]), np.stack([np.asarray(t) for t in thumbs])


def host_copies(pictures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.empty((len(pictures), 3, BACKBONE_SIDE, BACKBONE_SIDE), np.float32)
    thumbs = np.empty((len(pictures), THUMB_SIDE, THUMB_SIDE, 3), np.uint8)
    for picture, p, t in zip(pictures, pixels, thumbs):
        backbone_copies(picture, p, t)
    return pixels, thumbs


def test_the_host_copies_are_dalis_to_rounding_at_any_size_and_aspect():
    rng = np.random.default_rng(0)
    sizes = [(600, 800), (900, 300), (301, 900), (48, 64), (224, 224), (1500, 700)]
    pictures = []
    for height, width in sizes:  # gradients and a texture a few pixels wide, with noise
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x * 255 // width, y * 255 // height, 127 + 100 * np.sin((x + 2 * y) / 9.0)], axis=-1)
        noise = rng.integers(0, 12, (height, width, 3))
        pictures.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    (dali_pixels, dali_thumbs), (pixels, thumbs) = dali_copies(pictures), host_copies(pictures)
    levels = np.abs(pixels - dali_pixels) * np.array(STD, np.float32)[:, None, None]
    assert levels.mean() < 0.15 and np.percentile(levels, 99) <= 1.01
    assert np.abs(thumbs.astype(int) - dali_thumbs.astype(int)).mean() < 0.3
    white = (PAD_WHITE - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    for (height, width), p, d in zip(sizes, pixels, dali_pixels):
        small_height, small_width = longer_side_size(height, width, BACKBONE_SIDE)
        top, left = centring_offset(small_height), centring_offset(small_width)
        outside = np.ones((BACKBONE_SIDE, BACKBONE_SIDE), bool)
        outside[top : top + small_height, left : left + small_width] = False
        np.testing.assert_allclose(p[:, outside], np.repeat(white[:, None], outside.sum(), 1), rtol=1e-6)
        assert np.allclose(d[:, outside], p[:, outside], atol=1e-5)  # DALI pads the same pixels


def test_an_odd_margin_puts_its_extra_pixel_before_the_copy_as_dali_does():
    assert centring_offset(75) == 75 and centring_offset(76) == 74 and centring_offset(BACKBONE_SIDE) == 0
    assert longer_side_size(900, 300, BACKBONE_SIDE) == (224, 75)
    assert longer_side_size(1, 5000, BACKBONE_SIDE) == (1, 224)
