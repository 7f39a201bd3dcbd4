"""preprocessing.runner: the real DALI pipeline on CPU, per-image failure isolation and the classical measures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from contract import tensors
from preprocessing.colour import HSV_HIST_BINS
from preprocessing.image_header import SUPPORTED_FORMATS, sniff_format
from preprocessing.perceptual import hash_features
from preprocessing.pipeline import MEAN, STD, THUMB_SIDE
from preprocessing.runner import OUTPUTS, PreprocessRunner, object_bbox, quality_features
from tests.helpers import blurred, corrupt_jpeg, encode, product_photo

SHARP = product_photo(side=800)
GOOD_JPEG = encode(SHARP)
OTHER_JPEG = encode(product_photo(side=500, colour=(40, 90, 200), seed=1))
WIDE = product_photo(side=300, seed=2).resize((300, 200))  # width 300, height 200


@pytest.fixture(scope="module")
def runner() -> PreprocessRunner:
    return PreprocessRunner(max_batch=8)


def as_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def run(runner: PreprocessRunner, *files: bytes) -> dict[str, np.ndarray]:
    return runner.run([as_array(f) for f in files])


def run_one(runner: PreprocessRunner, data: bytes) -> dict[str, np.ndarray]:
    return {name: value[0] for name, value in run(runner, data).items()}


# ---------------------------------------------------------------------------------------------- outputs


def test_outputs_have_the_contract_shapes_and_dtypes(runner):
    out = run(runner, GOOD_JPEG, encode(WIDE, "PNG"), OTHER_JPEG)
    assert set(out) == set(OUTPUTS)
    for name, (dtype, shape) in OUTPUTS.items():
        assert out[name].shape == (3, *shape), name
        assert out[name].dtype == np.dtype(dtype), name
    assert out["VALID"].all()


def test_empty_batch(runner):
    out = runner.run([])
    for name, (_dtype, shape) in OUTPUTS.items():
        assert out[name].shape == (0, *shape)


@pytest.mark.parametrize(
    ("size", "expected"), [((300, 200), (200, 300)), ((120, 410), (410, 120))], ids=["wide", "tall"]
)
def test_orig_size_is_height_width(runner, size, expected):
    out = run_one(runner, encode(product_photo(side=300).resize(size)))
    assert tuple(out["ORIG_SIZE"]) == expected


def test_exif_orientation_is_applied_consistently(runner):
    """ORIG_SIZE and the pixels both describe the image as displayed (EXIF orientation 6: rotate 90)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(WIDE, exif=exif)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(rotated)))
    out = run(runner, rotated, encode(upright), encode(WIDE))
    assert tuple(out["ORIG_SIZE"][0]) == (300, 200)
    thumb_error = np.abs(out["THUMB"][0].astype(int) - out["THUMB"][1]).mean()
    unrotated_error = np.abs(out["THUMB"][0].astype(int) - out["THUMB"][2]).mean()
    assert thumb_error < 3 < unrotated_error


def test_pixels_are_padded_with_white(runner):
    pixels = run_one(runner, encode(WIDE))["PIXELS"]
    white = np.array([(255 - m) / s for m, s in zip(MEAN, STD)], dtype=np.float32)[:, None]
    # 300x200 -> 224x149 centred: about 37 padded rows above and below.
    assert np.allclose(pixels[:, 0, :], white, atol=1e-4)
    assert np.allclose(pixels[:, -1, :], white, atol=1e-4)
    assert not np.allclose(pixels[:, 112, :], white, atol=0.1)  # the product is in the middle


def test_hashes_are_those_the_gateway_computes_from_the_thumbnail(runner):
    """PHASH, DHASH_EDGE and HSV_HIST are preprocessing.perceptual.hash_features of THUMB (the gateway's fallback
    for profiles that do not hash in Triton computes exactly these)."""
    out = run(runner, GOOD_JPEG, OTHER_JPEG, encode(WIDE, "PNG"))
    for i in range(3):
        phash, dhash, hist = hash_features(out["THUMB"][i])
        assert (int(out["PHASH"][i, 0]), int(out["DHASH_EDGE"][i, 0])) == (phash, dhash)
        np.testing.assert_array_equal(out["HSV_HIST"][i], hist)
    assert not np.allclose(out["HSV_HIST"][0], out["HSV_HIST"][1])  # one product shape in two colours
    np.testing.assert_allclose(out["HSV_HIST"].sum(axis=1), 1.0, rtol=1e-5)


def test_the_histogram_width_is_the_contracts():
    assert HSV_HIST_BINS == tensors.HSV_HIST_BINS == OUTPUTS["HSV_HIST"][1][0]


# ---------------------------------------------------------------------------------------------- failures


def test_bad_files_fail_alone_and_good_outputs_are_unchanged(runner):
    alone = run(runner, GOOD_JPEG, OTHER_JPEG)
    mixed = run(runner, GOOD_JPEG, corrupt_jpeg(GOOD_JPEG), b"garbage, not an image", b"", OTHER_JPEG)
    assert mixed["VALID"][:, 0].tolist() == [True, False, False, False, True]
    for name in OUTPUTS:
        np.testing.assert_array_equal(mixed[name][[0, 4]], alone[name], err_msg=name)
        if name != "VALID":
            assert not mixed[name][1:4].any(), f"{name} of a failed image is zeros"
    # The pipeline rebuilt after the failure still gives identical results.
    again = run(runner, GOOD_JPEG, OTHER_JPEG)
    for name in OUTPUTS:
        np.testing.assert_array_equal(again[name], alone[name], err_msg=name)


def test_more_files_than_a_dali_batch_run_in_slices_with_the_same_results(runner):
    files = [GOOD_JPEG, OTHER_JPEG, corrupt_jpeg(GOOD_JPEG)] * 4  # 12 files: slices of 8 and 4, a bad one in each
    sliced = run(runner, *files)
    assert sliced["VALID"][:, 0].tolist() == [True, True, False] * 4
    one_batch = run(runner, GOOD_JPEG, OTHER_JPEG, corrupt_jpeg(GOOD_JPEG))
    for name in OUTPUTS:
        assert sliced[name].shape[0] == len(files), name
        np.testing.assert_array_equal(sliced[name], np.concatenate([one_batch[name]] * 4), err_msg=name)


def test_batch_of_only_bad_files(runner):
    out = run(runner, corrupt_jpeg(GOOD_JPEG), b"", b"\x89PNG\r\n\x1a\n broken")
    assert not out["VALID"].any()
    assert not out["ORIG_SIZE"].any()


# ---------------------------------------------------------------------------------------------- formats


def test_png_with_alpha_decodes(runner):
    rgba = np.asarray(WIDE.convert("RGBA")).copy()
    rgba[..., 3] = 160  # semi-transparent everywhere
    out = run(runner, encode(Image.fromarray(rgba), "PNG"))
    assert out["VALID"][0, 0]
    assert tuple(out["ORIG_SIZE"][0]) == (200, 300)
    assert out["THUMB"][0].shape == (THUMB_SIDE, THUMB_SIDE, 3)


def test_opaque_rgba_png_matches_the_rgb_png(runner):
    out = run(runner, encode(WIDE.convert("RGBA"), "PNG"), encode(WIDE, "PNG"))
    assert out["VALID"].all()
    np.testing.assert_array_equal(out["THUMB"][0], out["THUMB"][1])
    np.testing.assert_allclose(out["PIXELS"][0], out["PIXELS"][1], atol=1e-5)


def test_greyscale_jpeg_becomes_three_equal_channels(runner):
    out = run_one(runner, encode(WIDE.convert("L")))
    assert out["VALID"][0]
    thumb = out["THUMB"].astype(int)
    assert np.abs(thumb[..., 0] - thumb[..., 1]).max() <= 1
    assert np.abs(thumb[..., 0] - thumb[..., 2]).max() <= 1


SAMPLES = {
    "jpeg": ("JPEG", {}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {}),
    "bmp": ("BMP", {}),
    "tiff": ("TIFF", {}),
    "jpeg2000": ("JPEG2000", {}),
    "pnm": ("PPM", {}),
}


def test_every_supported_format_has_a_sample():
    assert set(SAMPLES) == SUPPORTED_FORMATS


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_formats_the_gateway_accepts_decode(runner, kind):
    """gateway.clients.fetch passes these formats to Triton: the decoder must read every one of them."""
    fmt, options = SAMPLES[kind]
    data = encode(WIDE, fmt, **options)
    assert sniff_format(data) == kind
    out = run_one(runner, data)
    assert out["VALID"][0]
    assert tuple(out["ORIG_SIZE"]) == (200, 300)


# ---------------------------------------------------------------------------------------------- quality measures


def test_blurred_image_has_much_lower_laplacian_variance(runner):
    out = run(runner, GOOD_JPEG, encode(blurred(SHARP)))
    sharp_var, blurred_var = out["QUALITY_FEATURES"][:, 0]
    assert blurred_var < sharp_var / 10


def test_small_object_has_small_area_fraction(runner):
    small = encode(product_photo(side=800, object_fraction=0.2))
    normal = encode(product_photo(side=800, object_fraction=0.7))
    out = run(runner, small, normal)
    small_area, normal_area = out["QUALITY_FEATURES"][:, 1]
    assert small_area < 0.1
    assert normal_area > 0.3


def test_blur_is_measured_inside_the_object_box(runner):
    """A sharp product in a wide white margin must not look blurrier than the same product filling the frame."""
    small = run_one(runner, encode(product_photo(side=800, object_fraction=0.3)))["QUALITY_FEATURES"]
    large = run_one(runner, encode(product_photo(side=800, object_fraction=0.9)))["QUALITY_FEATURES"]
    assert small[0] > large[0] / 3


def white_thumb() -> np.ndarray:
    return np.full((THUMB_SIDE, THUMB_SIDE, 3), 255, np.uint8)


def test_object_bbox_all_white_is_empty():
    assert object_bbox(white_thumb()) == (0, 0, 0, 0)


def test_object_bbox_finds_a_rectangle_on_any_uniform_background():
    for background in (255, 128, 0):
        thumb = np.full((THUMB_SIDE, THUMB_SIDE, 3), background, np.uint8)
        thumb[30:60, 40:100] = (200, 40, 40) if background != 200 else (0, 0, 0)
        assert object_bbox(thumb) == (30, 60, 40, 100), background


def test_object_bbox_ignores_sparse_specks_and_faint_tints():
    thumb = white_thumb()
    thumb[10, 10] = thumb[90, 70] = 0  # one pixel per line: below MIN_LINE_FRACTION
    thumb[40:80, 40:80] = 245  # within BACKGROUND_TOLERANCE of white
    assert object_bbox(thumb) == (0, 0, 0, 0)


def test_quality_features_of_an_empty_thumb():
    laplacian = np.random.default_rng(0).normal(0, 2, (64, 64)).astype(np.float32)
    variance, area = quality_features(white_thumb(), laplacian)
    assert area == 0.0
    assert variance == pytest.approx(laplacian.var(), rel=1e-5)  # no box: the whole image is measured


def test_quality_features_maps_the_box_onto_the_laplacian():
    thumb = white_thumb()
    thumb[32:96, 32:96] = 0  # the central quarter of the area
    laplacian = np.zeros((256, 512), np.float32)
    laplacian[64:192, 128:384] = np.random.default_rng(1).normal(0, 5, (128, 256))
    variance, area = quality_features(thumb, laplacian[..., None])
    assert area == pytest.approx(0.25)
    assert variance == pytest.approx(laplacian[64:192, 128:384].var(), rel=1e-5)


def test_transparent_background_comes_out_white_not_black(runner):
    """Placeholder PNGs are mostly transparent: the page shows them on white, so the models must see white too."""
    rgba = np.zeros((200, 300, 4), dtype=np.uint8)  # hidden pixels are black
    rgba[60:140, 100:200] = (200, 30, 30, 255)  # an opaque red box in the middle
    out = run(runner, encode(Image.fromarray(rgba), "PNG"), encode(Image.fromarray(rgba), "WEBP", lossless=True))
    assert out["VALID"].all()
    for thumb in out["THUMB"]:
        assert tuple(thumb[0, 0]) == (255, 255, 255)
        assert tuple(thumb[64, 64]) == (200, 30, 30)
    assert tuple(out["ORIG_SIZE"][0]) == (200, 300)
    assert 0.1 < out["QUALITY_FEATURES"][0, 1] < 0.2  # the 80x100 box (0.133 of the frame), not the frame
