"""Mutated image files for the decoder fuzz (loadtest/decoder_fuzz.py): real JPEG/PNG/WebP/TIFF seeds of a synthetic
product picture, and deterministic mutations of them: bit flips, byte runs, truncations, splices, and edits of header
fields a decoder trusts (dimensions, segment and chunk lengths, markers, TIFF tags and offsets).

Pure: `mutant(seeds, seed, index)` is a function of its arguments (random.Random seeded with a string is stable across
runs and Python hash seeds), so any file the fuzz reports is rebuilt from (seed, index).
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from loadtest.products import PROJECT_ROOT

SEED_SIDE = 448  # above every category's min_side, so mutants that still decode go the whole way (selected, ...)
# Values that sit on the edges decoders get wrong: zero, one, sign and width boundaries, all-ones.
INTERESTING_16 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_32 = (*INTERESTING_16, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
JPEG_MARKERS = (0x01, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC9, 0xCC, 0xD8, 0xD9, 0xDA, 0xDB, 0xDD, 0xE0, 0xE1, 0xFE, 0xFF)


@dataclass(frozen=True)
class Mutant:
    index: int
    seed_name: str  # e.g. "jpeg-progressive"
    mutations: tuple[str, ...]  # applied in order, e.g. ("png_dims", "bit_flip")
    data: bytes


def seed_files() -> dict[str, bytes]:
    """One small product picture encoded in each container and a few encoder variants."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.helpers import product_photo  # the synthetic product picture the tests and benchmarks share

    picture = product_photo(SEED_SIDE, (40, 90, 200), seed=7)
    variants = {
        "jpeg-baseline": ("JPEG", {"quality": 85}),
        "jpeg-progressive": ("JPEG", {"quality": 80, "progressive": True}),
        "png-rgb": ("PNG", {}),
        "png-palette": ("PNG", {"palette": True}),
        "webp-lossy": ("WEBP", {"quality": 80}),
        "webp-lossless": ("WEBP", {"lossless": True}),
        "tiff-raw": ("TIFF", {}),
        "tiff-deflate": ("TIFF", {"compression": "tiff_adobe_deflate"}),
    }
    files = {}
    for name, (fmt, options) in variants.items():
        image = picture.quantize(64) if options.pop("palette", False) else picture
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        files[name] = buffer.getvalue()
    return files


# ------------------------------------------------------------------------------------------------ generic mutations


def bit_flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 8, 32))):
        position = rng.randrange(len(out) * 8)
        out[position // 8] ^= 1 << (position % 8)
    return bytes(out)


def byte_run(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    length = rng.choice((1, 4, 16, 64, 512))
    value = rng.choice((b"\x00", b"\xff", bytes([rng.randrange(256)])))
    return data[:start] + value * length + data[start + length :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    # Half the cuts fall inside the first 64 bytes (headers), half anywhere.
    end = rng.randrange(min(64, len(data))) if rng.random() < 0.5 else rng.randrange(len(data))
    return data[:end]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.choice((1, 3, 16, 200))) + data[at:]


def duplicate_block(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    block = data[start : start + rng.choice((8, 64, 1024))]
    return data[:start] + block * rng.choice((2, 8)) + data[start:]


# -------------------------------------------------------------------------------------- format-aware header edits


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(offset of the 0xFF, marker, length field) of every segment before the scan data."""
    segments, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        length = struct.unpack_from(">H", data, offset + 2)[0]
        segments.append((offset, marker, length))
        if marker == 0xDA:
            break
        offset += 2 + length
    return segments


def jpeg_header_edit(rng: random.Random, data: bytes) -> bytes:
    segments = jpeg_segments(data)
    if not segments:
        return bit_flip(rng, data)
    out = bytearray(data)
    frames = [s for s in segments if 0xC0 <= s[1] <= 0xCF and s[1] not in (0xC4, 0xC8, 0xCC)]
    choice = rng.randrange(4)
    if choice == 0 and frames:  # frame height/width, precision, component count
        offset = frames[0][0]
        field = rng.choice(((offset + 5, ">H"), (offset + 7, ">H"), (offset + 4, "B"), (offset + 9, "B")))
        values = INTERESTING_16 if field[1] == ">H" else (0, 1, 3, 4, 8, 12, 16, 255)
        struct.pack_into(field[1], out, field[0], rng.choice(values))
    elif choice == 1:  # a segment's length field
        offset = rng.choice(segments)[0]
        struct.pack_into(">H", out, offset + 2, rng.choice(INTERESTING_16))
    elif choice == 2:  # a segment's marker code
        out[rng.choice(segments)[0] + 1] = rng.choice(JPEG_MARKERS)
    else:  # drop a whole segment (a table the scan needs, the frame header, ...)
        offset, _marker, length = rng.choice(segments)
        del out[offset : offset + 2 + length]
    return bytes(out)


def png_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset of the length field, chunk type, data length) of every chunk."""
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        chunks.append((offset, kind, length))
        offset += 12 + length
    return chunks


def png_fix_crc(out: bytearray, offset: int, length: int) -> None:
    """Recompute a chunk's CRC so decoders that check it read the edited fields instead of stopping at the CRC."""
    end = offset + 8 + length
    if end + 4 <= len(out):
        struct.pack_into(">I", out, end, zlib.crc32(out[offset + 4 : end]))


def png_header_edit(rng: random.Random, data: bytes) -> bytes:
    chunks = png_chunks(data)
    if not chunks or chunks[0][1] != b"IHDR":
        return bit_flip(rng, data)
    out = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0:  # IHDR width / height
        struct.pack_into(">I", out, 16 + 4 * rng.randrange(2), rng.choice(INTERESTING_32))
        png_fix_crc(out, 8, 13)
    elif choice == 1:  # bit depth, colour type, compression, filter, interlace
        out[24 + rng.randrange(5)] = rng.choice((0, 1, 2, 3, 4, 6, 8, 16, 255))
        png_fix_crc(out, 8, 13)
    elif choice == 2:  # a chunk's length field
        offset = rng.choice(chunks)[0]
        struct.pack_into(">I", out, offset, rng.choice(INTERESTING_32))
    else:  # a chunk's type (IDAT renamed, IEND early, critical bit flipped)
        offset = rng.choice(chunks)[0]
        out[offset + 4 : offset + 8] = rng.choice((b"IEND", b"IDAT", b"IHDR", b"PLTE", b"iDAT", b"zzzz"))
    return bytes(out)


def webp_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset of the fourcc, fourcc, size) of every RIFF chunk after the WEBP header."""
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, offset)
        chunks.append((offset, kind, size))
        offset += 8 + size + (size & 1)
    return chunks


def webp_header_edit(rng: random.Random, data: bytes) -> bytes:
    chunks = webp_chunks(data)
    out = bytearray(data)
    choice = rng.randrange(3)
    if choice == 0 or not chunks:  # the RIFF size
        struct.pack_into("<I", out, 4, rng.choice(INTERESTING_32))
    elif choice == 1:  # a chunk's size
        struct.pack_into("<I", out, rng.choice(chunks)[0] + 4, rng.choice(INTERESTING_32))
    else:  # the bitstream's width/height
        offset, kind, _size = chunks[0]
        body = offset + 8
        if kind == b"VP8 " and body + 10 <= len(out):  # 3-byte frame tag, start code, 16-bit LE width and height
            struct.pack_into("<H", out, body + 6 + 2 * rng.randrange(2), rng.choice(INTERESTING_16))
        elif kind == b"VP8L" and body + 5 <= len(out):  # signature byte, then 14-bit width-1 and height-1 packed
            struct.pack_into("<I", out, body + 1, rng.getrandbits(32))
        elif kind == b"VP8X" and body + 10 <= len(out):  # 24-bit canvas width-1 and height-1
            field = body + 4 + 3 * rng.randrange(2)
            out[field : field + 3] = rng.randbytes(3)
        else:
            return bit_flip(rng, data)
    return bytes(out)


def tiff_entries(data: bytes) -> tuple[str, int, list[int]]:
    """Byte order, offset of the first IFD, offsets of its 12-byte entries."""
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    if ifd + 2 > len(data):
        return order, ifd, []
    count = struct.unpack_from(order + "H", data, ifd)[0]
    return order, ifd, [ifd + 2 + 12 * k for k in range(count) if ifd + 14 + 12 * k <= len(data)]


def tiff_header_edit(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return bit_flip(rng, data)
    order, ifd, entries = tiff_entries(data)
    out = bytearray(data)
    choice = rng.randrange(4)
    if choice == 0 or not entries:  # where the first IFD is
        struct.pack_into(order + "I", out, 4, rng.choice((*INTERESTING_32, ifd + 1, ifd - 2)))
    elif choice == 1:  # how many entries the IFD has
        struct.pack_into(order + "H", out, ifd, rng.choice(INTERESTING_16))
    else:
        # A tag's value (width 256, height 257, bits 258, compression 259, strip offsets 273, samples 277,
        # rows per strip 278, strip byte counts 279, ...) or its count: SHORT values sit in the first 2 bytes.
        entry = rng.choice(entries)
        kind = struct.unpack_from(order + "H", out, entry + 2)[0]
        if choice == 2 and kind == 3:
            struct.pack_into(order + "H", out, entry + 8, rng.choice(INTERESTING_16))
        else:
            struct.pack_into(order + "I", out, entry + 4 + 4 * (choice == 2), rng.choice(INTERESTING_32))
    return bytes(out)


HEADER_EDITS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "jpeg": jpeg_header_edit,
    "png": png_header_edit,
    "webp": webp_header_edit,
    "tiff": tiff_header_edit,
}
GENERIC: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bit_flip": bit_flip,
    "byte_run": byte_run,
    "truncate": truncate,
    "insert_bytes": insert_bytes,
    "duplicate_block": duplicate_block,
}


def mutant(seeds: dict[str, bytes], seed: int, index: int) -> Mutant:
    """File number `index` of run `seed`: a seed file with 1-3 mutations, half led by a header edit of its format."""
    rng = random.Random(f"decoder-fuzz:{seed}:{index}")
    name = rng.choice(sorted(seeds))
    data, applied = seeds[name], []
    for step in range(rng.choice((1, 1, 2, 3))):
        if not data:
            break
        fmt = name.split("-")[0]
        if step == 0 and rng.random() < 0.5:
            kind, data = f"{fmt}_header", HEADER_EDITS[fmt](rng, data)
        elif rng.random() < 0.1:  # splice: this file's head onto another seed's tail
            other = seeds[rng.choice(sorted(seeds))]
            kind, data = "splice", data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
        else:
            kind = rng.choice(sorted(GENERIC))
            data = GENERIC[kind](rng, data)
        applied.append(kind)
    return Mutant(index, name, tuple(applied), data)


def mutants(seeds: dict[str, bytes], seed: int, count: int) -> list[Mutant]:
    return [mutant(seeds, seed, index) for index in range(count)]
