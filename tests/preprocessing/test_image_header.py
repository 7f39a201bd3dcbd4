"""preprocessing.image_header: declared sizes of real files equal PIL's, bombs of every format are refused before any
decode, and no input (truncated, mutated, random) makes a reader raise."""

from __future__ import annotations

import io
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from loadtest.bombs import (
    bmp_bomb,
    bombs,
    jpeg2000_bomb,
    jpeg_bomb,
    png_bomb,
    pnm_bomb,
    tiff_bomb,
    webp_bomb,
)
from preprocessing.image_header import (
    READERS,
    SUPPORTED_FORMATS,
    Refusal,
    check_dimensions,
    read_size,
    sniff_format,
    tiff_size,
)

LIMITS = dict(max_pixels=50_000_000, max_side=16_384)


def pil_file(fmt: str, size=(37, 23), mode="RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_jpeg() -> bytes:
    """A JPEG with an EXIF APP1 segment and a comment before its frame header."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 3000  # ImageDescription: a long APP1 to skip by its length
    return pil_file("JPEG", exif=exif.tobytes(), comment=b"made by a test")


REAL_FILES = {
    "jpeg": pil_file("JPEG"),
    "jpeg-progressive": pil_file("JPEG", progressive=True),
    "jpeg-exif-comment": exif_jpeg(),
    "jpeg-grey": pil_file("JPEG", mode="L"),
    "png": pil_file("PNG"),
    "png-palette": pil_file("PNG", mode="P"),
    "webp-lossy": pil_file("WEBP"),
    "webp-lossless": pil_file("WEBP", lossless=True),
    "webp-alpha": pil_file("WEBP", mode="RGBA"),  # VP8X with an ALPH chunk
    "tiff": pil_file("TIFF"),
    "tiff-lzw": pil_file("TIFF", compression="tiff_lzw"),
    "bmp": pil_file("BMP"),
    "jp2": pil_file("JPEG2000"),
    "j2k": pil_file("JPEG2000", no_jp2=True),
    "ppm": pil_file("PPM"),
    "pgm": pil_file("PPM", mode="L"),
    "pbm": pil_file("PPM", mode="1"),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_small_files_declare_what_pil_reads(name):
    data = REAL_FILES[name]
    assert read_size(data) == Image.open(io.BytesIO(data)).size == (37, 23)
    assert check_dimensions(data, **LIMITS) is None


def test_every_supported_format_has_a_reader_and_a_real_sample():
    assert set(READERS) == SUPPORTED_FORMATS
    assert {sniff_format(data) for data in REAL_FILES.values()} == SUPPORTED_FORMATS


@pytest.mark.parametrize("name", sorted(bombs(9000)))
def test_bombs_of_every_format_are_too_large_and_pil_agrees_on_their_size(name, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # PIL only opens them (reads the header), never decodes
    data = bombs(9000)[name]
    assert read_size(data) == Image.open(io.BytesIO(data)).size == (9000, 9000)
    refusal = check_dimensions(data, **LIMITS)
    assert refusal.reason == "too_large"
    assert "9000x9000" in refusal.detail and "81000000" in refusal.detail and "50000000" in refusal.detail


def test_a_real_png_bomb_is_small_on_the_wire_and_refused():
    data = png_bomb(20000, 20000)  # 400 megapixels, every row really compressed
    assert len(data) < 500_000
    refusal = check_dimensions(data, **LIMITS)
    assert refusal == Refusal("too_large", "png of 20000x20000: a side over the limit of 16384 pixels")


@pytest.mark.parametrize(
    ("size", "limits", "expected"),
    [
        ((7071, 7071), LIMITS, None),  # 49,999,041 pixels
        ((7072, 7071), LIMITS, "too_large"),  # 50,006,112 pixels
        ((16384, 100), LIMITS, None),  # a side exactly at the limit
        ((16385, 100), LIMITS, "too_large"),
        ((100, 16385), LIMITS, "too_large"),
        ((1000, 1000), dict(max_pixels=1_000_000, max_side=1000), None),  # both limits are inclusive
        ((1001, 999), dict(max_pixels=1_000_000, max_side=2000), None),
        ((1001, 1000), dict(max_pixels=1_000_000, max_side=2000), "too_large"),
    ],
)
def test_limits_are_inclusive(size, limits, expected):
    refusal = check_dimensions(pnm_bomb(*size), **limits)
    assert (refusal.reason if refusal else None) == expected


@pytest.mark.parametrize(
    "data",
    [
        pnm_bomb(0, 10),
        png_bomb(10, 0),
        tiff_bomb(0, 0),
        jpeg_bomb(0, 64),  # height 0: defined later by a DNL marker, which the decoder does not support
        webp_bomb(0, 5, "VP8"),
        bmp_bomb(0, 5),
    ],
    ids=["pnm", "png", "tiff", "jpeg", "webp", "bmp"],
)
def test_an_empty_declared_size_is_undecodable(data):
    refusal = check_dimensions(data, **LIMITS)
    assert refusal.reason == "undecodable"
    assert "empty" in refusal.detail or "header" in refusal.detail


def test_tiff_both_byte_orders_short_and_long():
    for order in "<>":
        for short in (False, True):
            assert read_size(tiff_bomb(300, 200, order, short)) == (300, 200)


def test_bigtiff_first_ifd():
    order = "<"
    entries = [(256, 16, 70_000), (257, 4, 5)]  # LONG8 width, LONG height, 20-byte entries
    ifd = struct.pack(order + "Q", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack(order + "HHQQ", tag, kind, 1, value)
    data = b"II+\x00" + struct.pack(order + "HHQ", 8, 0, 16) + ifd + bytes(8)
    assert tiff_size(data) == (70_000, 5)


def test_bmp_top_down_and_core_header():
    assert read_size(bmp_bomb(40, -30)) == (40, 30)  # negative height: rows stored top-down
    assert read_size(bmp_bomb(40, 30, core=True)) == (40, 30)
    assert read_size(bmp_bomb(-40, 30)) is None


def test_jpeg_fill_bytes_before_markers_are_skipped():
    data = REAL_FILES["jpeg-exif-comment"]
    padded = data[:2] + b"\xff\xff\xff" + data[2:]  # fill bytes are allowed before any marker
    assert read_size(padded) == (37, 23)


def test_jpeg_largest_frame_before_the_scan_counts():
    data = jpeg_bomb(37, 23)
    frame = data.index(b"\xff\xc0")
    length = struct.unpack_from(">H", data, frame + 2)[0]
    second = bytearray(data[frame : frame + 2 + length])
    second[5:9] = struct.pack(">HH", 20000, 20000)
    forged = data[:frame] + data[frame : frame + 2 + length] + bytes(second) + data[frame + 2 + length :]
    assert read_size(forged) == (20000, 20000)


def test_jp2_small_ihdr_cannot_hide_a_large_codestream():
    # The ihdr box says 16x16; the codestream (what the decoder allocates for) says 20000x20000.
    data = bytearray(jpeg2000_bomb(16, 16))
    siz = data.index(b"\xff\x4f\xff\x51")
    data[siz + 8 : siz + 16] = struct.pack(">II", 20000, 20000)
    assert read_size(bytes(data)) == (20000, 20000)
    assert read_size(jpeg2000_bomb(20000, 20000, ihdr_only=True)) == (20000, 20000)


def test_j2k_image_offsets_are_subtracted():
    data = bytearray(jpeg2000_bomb(100, 80, raw=True))
    siz = data.index(b"\xff\x4f\xff\x51")
    data[siz + 16 : siz + 24] = struct.pack(">II", 10, 20)  # XOsiz, YOsiz
    assert read_size(bytes(data)) == (90, 60)
    data[siz + 16 : siz + 20] = struct.pack(">I", 200)  # an offset past the grid
    assert read_size(bytes(data)) is None


def test_pnm_comments_and_oversized_fields():
    assert read_size(b"P5 # a\n# b\n 640\t480 255\n" + bytes(10)) == (640, 480)
    assert read_size(b"P6\n" + b"9" * 40 + b" 10\n255\n") is None


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_truncated_headers_are_undecodable_never_a_wrong_size(name):
    data = REAL_FILES[name]
    for cut in range(min(len(data), 400)):
        size = read_size(data[:cut])
        assert size in (None, (37, 23)), cut
        refusal = check_dimensions(data[:cut], **LIMITS)
        assert refusal is None or refusal.reason == "undecodable"
    assert check_dimensions(data[:5], **LIMITS).reason == "undecodable"  # shorter than any header


def test_not_an_image_is_undecodable_with_a_clear_detail():
    refusal = check_dimensions(b"GIF89a" + bytes(20), **LIMITS)
    assert refusal.reason == "undecodable"
    assert "header" in refusal.detail


def mutations(seed: int, count: int):
    """Bit flips, byte edits, cuts and splices of the real files (seeded)."""
    rng = random.Random(seed)
    samples = list(REAL_FILES.values()) + list(bombs(300).values())
    for _ in range(count):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            action = rng.random()
            if action < 0.5:
                data[at] ^= 1 << rng.randrange(8)
            elif action < 0.8:
                data[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
            else:
                del data[at:]
                if not data:
                    break
        yield bytes(data)


def test_mutated_files_never_raise():
    for data in mutations(seed=10, count=3000):
        refusal = check_dimensions(data, **LIMITS)
        assert refusal is None or refusal.reason in ("undecodable", "too_large")


MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"BM", b"II*\x00", b"MM\x00*",
          b"II+\x00", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ", b"P6\n", b""]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MAGICS), st.binary(max_size=300))
def test_random_bytes_after_any_magic_never_raise(magic, tail):
    data = magic + tail
    size = read_size(data)
    assert size is None or all(isinstance(side, int) for side in size)
    check_dimensions(data, **LIMITS)
