"""gateway.clients.fetch: format sniffing and base64 decoding (URL fetching: test_fetch_urls.py)."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pybase64
import pytest

from gateway.clients.fetch import Fetched, check_format, decode_base64
from preprocessing.image_header import sniff_format
from tests.helpers import corrupt_jpeg, encode, product_photo

PHOTO = product_photo(side=64)
JPEG = encode(PHOTO)
PNG = encode(PHOTO, "PNG")
WEBP = encode(PHOTO, "WEBP")
GIF = encode(PHOTO, "GIF")
BMP = encode(PHOTO, "BMP")
TIFF = encode(PHOTO, "TIFF")
HEIF = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(64)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
SVG_XML = b'\n  <?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
HTML = b"<!DOCTYPE html><html><body>404 Not Found</body></html>"
GARBAGE = b"this is definitely not an image file"

PUBLIC = "http://93.184.216.34"  # an IP literal: resolving it needs no DNS and it is a global address


# ---------------------------------------------------------------------------------------------- sniff / check


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (JPEG, "jpeg"),
        (PNG, "png"),
        (WEBP, "webp"),
        (GIF, "gif"),
        (BMP, "bmp"),
        (TIFF, "tiff"),
        (HEIF, "heif/avif"),
        (AVIF, "heif/avif"),
        (SVG, "svg"),
        (SVG_XML, "svg"),
        (PDF, "pdf"),
        (b"", None),
        (GARBAGE, None),
        (HTML, None),
    ],
    ids=[
        "jpeg",
        "png",
        "webp",
        "gif",
        "bmp",
        "tiff",
        "heif",
        "avif",
        "svg",
        "svg-xml",
        "pdf",
        "empty",
        "garbage",
        "html",
    ],
)
def test_sniff_format(data, kind):
    assert sniff_format(data) == kind


@pytest.mark.parametrize("data", [JPEG, PNG, WEBP, BMP, TIFF], ids=["jpeg", "png", "webp", "bmp", "tiff"])
def test_check_format_accepts_decodable_formats_unchanged(data):
    result = check_format(data)
    assert result.reason is None
    assert result.data == data


@pytest.mark.parametrize(
    "data", [GIF, HEIF, AVIF, SVG, SVG_XML, PDF], ids=["gif", "heif", "avif", "svg", "svg-xml", "pdf"]
)
def test_check_format_recognised_but_unsupported(data):
    result = check_format(data)
    assert result.data is None
    assert result.reason == "unsupported_format"
    assert result.detail  # the cause is named for the logs


@pytest.mark.parametrize(
    "data", [b"", GARBAGE, HTML, np.random.default_rng(3).bytes(256)], ids=["empty", "garbage", "html", "random"]
)
def test_check_format_unknown_bytes_are_undecodable(data):
    result = check_format(data)
    assert result.data is None
    assert result.reason == "undecodable"


def test_check_format_leaves_truncated_jpeg_to_the_decoder():
    # The magic bytes are intact: the decoder (not the sniffer) is what rejects a truncated file.
    truncated = corrupt_jpeg(JPEG)
    assert check_format(truncated).data == truncated


# ---------------------------------------------------------------------------------------------- base64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_decode_base64_valid_jpeg_returns_the_bytes():
    result = decode_base64(b64(JPEG), max_bytes=len(JPEG))
    assert result == Fetched(JPEG)


@pytest.mark.parametrize("text", ["not base64!!", "abc", "////===="], ids=["bad-chars", "bad-length", "bad-padding"])
def test_decode_base64_invalid_is_undecodable(text):
    result = decode_base64(text, max_bytes=1000)
    assert result.data is None
    assert result.reason == "undecodable"


@pytest.mark.parametrize("text", ["QQ==QUJD", "=QQ==", "QQ=", "QUJD-_", "QUJD RA==", "é", "", "QUJDRA==", "QUJD\n"])
def test_the_fast_decoder_accepts_and_refuses_what_strict_binascii_does(text):
    """pybase64 (the gateway's decoder) against binascii's strict mode, on padding, alphabet and non-ASCII corners."""
    try:
        expected = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        expected = None
    try:
        got = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        got = None
    assert got == expected


@pytest.mark.parametrize(
    "wrap",
    [
        lambda t: "data:image/jpeg;base64," + t,
        lambda t: "\n".join(t[i : i + 76] for i in range(0, len(t), 76)) + "\n",  # `base64` command / MIME style
        lambda t: "  " + t + "  ",
    ],
)
def test_decode_base64_accepts_data_uri_and_line_breaks(wrap):
    jpeg = encode(product_photo(64))
    assert decode_base64(wrap(base64.b64encode(jpeg).decode()), 1 << 20).data == jpeg


def test_decode_base64_valid_base64_of_garbage_is_undecodable():
    assert decode_base64(b64(GARBAGE), 1000).reason == "undecodable"


def test_decode_base64_valid_base64_of_gif_is_unsupported():
    assert decode_base64(b64(GIF), len(GIF)).reason == "unsupported_format"


def test_decode_base64_too_large_is_rejected_before_decoding():
    # Not even valid base64: only the cheap length bound can have produced `too_large`.
    result = decode_base64("!" * 4000, max_bytes=1000)
    assert result.data is None
    assert result.reason == "too_large"


def test_decode_base64_too_large_after_decoding():
    data = JPEG[:11]
    text = b64(data)
    assert len(text) * 3 // 4 <= 10 + 3  # passes the cheap bound: the decoded length decides
    result = decode_base64(text, max_bytes=10)
    assert result.data is None
    assert result.reason == "too_large"


@pytest.mark.parametrize("limit", range(20, 32))
def test_decode_base64_limit_is_exact(limit):
    """Exactly `max_bytes` decoded bytes pass, one more is too large, whatever the base64 padding."""
    body = JPEG[:3] + bytes(range(256)) * 2
    assert decode_base64(b64(body[:limit]), limit).data == body[:limit]
    assert decode_base64(b64(body[: limit + 1]), limit).reason == "too_large"


# ---------------------------------------------------------------------------------------------- Fetcher
