"""Width and height from an image file's header, never decoding a pixel: the guard against decompression bombs.

A 0.4 MB PNG can declare 20000x20000 pixels; decoding it costs 1.2 GB before any model sees it. The gateway reads the
declared size here (pure, standard library only) and refuses the image before its bytes reach the decoder.

Every reader works on the leading bytes only and answers None when the header is missing, truncated or inconsistent
(the caller then says `undecodable`); no input makes a reader raise or loop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from contract.reasons import TOO_LARGE, UNDECODABLE

# Formats the decoder (DALI, preprocessing/pipeline.py) reads; others that are recognised get `unsupported_format`.
SUPPORTED_FORMATS = frozenset({"jpeg", "png", "webp", "bmp", "tiff", "jpeg2000", "pnm"})


@dataclass(frozen=True)
class Refusal:
    reason: str  # contract reason code
    detail: str  # human-readable cause, naming the declared size and the limit


def sniff_format(data: bytes) -> str | None:
    """The container format from its magic bytes, or None when unrecognised."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xffO\xffQ"):
        return "jpeg2000"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp":
        return "heif/avif"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "svg"
    if head.startswith(b"%PDF"):
        return "pdf"
    return None


# ---------------------------------------------------------------------------------------------- JPEG

# Start-of-frame markers of every coding process (not C4 DHT, C8 JPG, CC DAC), and DHP (hierarchical) which carries
# the same size fields.
_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xDE})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI: no length field


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The largest frame declared before the first scan (a second frame header is an error to the decoder, but a
    bomb should not hide behind a small first one). Segments (APPn, COM, tables) are skipped by their length."""
    sizes = []
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return None  # garbage between segments
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: every frame header has been seen
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            return None
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            sizes.append((width, height))
        pos += length
    return max(sizes, key=lambda s: s[0] * s[1]) if sizes else None


# ---------------------------------------------------------------------------------------------- PNG, WebP, BMP


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":  # the first chunk, by the PNG specification
        return None
    return struct.unpack_from(">II", data, 16)


def webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3 bytes), start code, 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature byte, then 14-bit width-1 and height-1 packed little-endian
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: flags (4 bytes), then 24-bit canvas width-1 and height-1
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return (width, height) if len(data) >= 30 else None
    return None


def bmp_size(data: bytes) -> tuple[int, int] | None:
    (header,) = struct.unpack_from("<I", data, 14)
    if header == 12:  # BITMAPCOREHEADER (OS/2): unsigned 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    if header < 16:
        return None
    width, height = struct.unpack_from("<ii", data, 18)  # BITMAPINFOHEADER and later
    if width <= 0:
        return None
    return width, abs(height)  # a negative height means rows stored top-down


# ---------------------------------------------------------------------------------------------- TIFF


_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
_TIFF_MAX_ENTRIES = 4096  # far above any real first IFD; bounds the work on a forged count


def tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first IFD (the page the decoder reads), either byte order, SHORT or LONG
    values; BigTIFF (version 43, 8-byte offsets) too."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        return None
    (version,) = struct.unpack_from(order + "H", data, 2)
    if version == 42:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        count_format, entry_size, value_format = "H", 12, "I"
    elif version == 43:
        (ifd,) = struct.unpack_from(order + "Q", data, 8)
        count_format, entry_size, value_format = "Q", 20, "Q"
    else:
        return None
    (count,) = struct.unpack_from(order + count_format, data, ifd)
    start = ifd + struct.calcsize(count_format)
    found: dict[int, int] = {}
    for k in range(min(count, _TIFF_MAX_ENTRIES)):
        entry = start + k * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH):
            value_at = entry + 4 + struct.calcsize(value_format)  # after tag, type and the value count
            if kind == 3:  # SHORT, left-justified in the value field
                (found[tag],) = struct.unpack_from(order + "H", data, value_at)
            elif kind in (4, 16):  # LONG, LONG8 (BigTIFF)
                (found[tag],) = struct.unpack_from(order + ("I" if kind == 4 else "Q"), data, value_at)
            else:
                return None
    if _TIFF_WIDTH not in found or _TIFF_LENGTH not in found:
        return None
    return found[_TIFF_WIDTH], found[_TIFF_LENGTH]


# ---------------------------------------------------------------------------------------------- JPEG 2000, PNM


def _j2k_codestream_size(data: bytes, pos: int) -> tuple[int, int] | None:
    """SIZ right after SOC: Xsiz, Ysiz (reference grid) minus the image offsets XOsiz, YOsiz."""
    if data[pos : pos + 4] != b"\xff\x4f\xff\x51":
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", data, pos + 8)
    if xosiz >= xsiz or yosiz >= ysiz:
        return None
    return xsiz - xosiz, ysiz - yosiz


def _jp2_boxes(data: bytes, pos: int, end: int):
    """(type, content start, content end) of each box in data[pos:end]."""
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:  # 64-bit length follows
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:  # the box runs to the end
            length = end - pos
        if length < header:
            return
        yield kind, pos + header, min(pos + length, end)
        pos += length


def jpeg2000_size(data: bytes) -> tuple[int, int] | None:
    """Raw codestream: SIZ. JP2 file: the larger of the `ihdr` box (in `jp2h`) and the codestream's SIZ when it is
    present, so a small `ihdr` cannot hide a large codestream."""
    if data.startswith(b"\xff\x4f"):
        return _j2k_codestream_size(data, 0)
    sizes = []
    for kind, start, end in _jp2_boxes(data, 0, len(data)):
        if kind == b"jp2h":
            for inner, inner_start, _ in _jp2_boxes(data, start, end):
                if inner == b"ihdr":
                    height, width = struct.unpack_from(">II", data, inner_start)
                    sizes.append((width, height))
        elif kind == b"jp2c":
            sizes.append(_j2k_codestream_size(data, start))
    if not sizes or None in sizes:
        return None
    return max(sizes, key=lambda s: s[0] * s[1])


_PNM_MAX_DIGITS = 12  # a size field longer than this is a forgery, not an image


def pnm_size(data: bytes) -> tuple[int, int] | None:
    """P1-P6: magic, then width and height as ASCII decimals separated by whitespace and `#` comments."""
    fields: list[int] = []
    pos = 2
    while len(fields) < 2 and pos < len(data):
        byte = data[pos : pos + 1]
        if byte.isspace():
            pos += 1
        elif byte == b"#":
            newline = data.find(b"\n", pos)
            if newline < 0:
                return None
            pos = newline + 1
        elif byte.isdigit():
            end = pos
            while end < len(data) and data[end : end + 1].isdigit() and end - pos <= _PNM_MAX_DIGITS:
                end += 1
            if end - pos > _PNM_MAX_DIGITS or end == len(data):  # too long, or cut off mid-number
                return None
            fields.append(int(data[pos:end]))
            pos = end
        else:
            return None
    return (fields[0], fields[1]) if len(fields) == 2 else None


# ---------------------------------------------------------------------------------------------- the check

READERS = {
    "jpeg": jpeg_size,
    "png": png_size,
    "webp": webp_size,
    "bmp": bmp_size,
    "tiff": tiff_size,
    "jpeg2000": jpeg2000_size,
    "pnm": pnm_size,
}


def read_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by the header of a supported format; None when unrecognised or unreadable."""
    reader = READERS.get(sniff_format(data) or "")
    if reader is None:
        return None
    try:
        return reader(data)
    except (struct.error, IndexError):  # a field past the end: a truncated header
        return None


def check_dimensions(data: bytes, max_pixels: int, max_side: int) -> Refusal | None:
    """None when the declared size is within both limits; else why not (`too_large`, or `undecodable` when the
    header cannot be read or declares an empty image)."""
    kind = sniff_format(data)
    size = read_size(data)
    if size is None:
        return Refusal(UNDECODABLE, f"no readable {kind or 'image'} header with a width and height")
    width, height = size
    if width <= 0 or height <= 0:
        return Refusal(UNDECODABLE, f"{kind} header declares an empty image ({width}x{height})")
    if max(width, height) > max_side:
        return Refusal(TOO_LARGE, f"{kind} of {width}x{height}: a side over the limit of {max_side} pixels")
    if width * height > max_pixels:
        return Refusal(
            TOO_LARGE, f"{kind} of {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    return None
