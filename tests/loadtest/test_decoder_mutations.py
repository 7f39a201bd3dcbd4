"""The decoder fuzz's mutation engine: deterministic, and its header edits hit the fields they name."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from loadtest.decoder_mutations import (
    HEADER_EDITS,
    INTERESTING_16,
    jpeg_header_edit,
    jpeg_segments,
    mutant,
    mutants,
    png_chunks,
    png_header_edit,
    seed_files,
    tiff_entries,
    webp_chunks,
)


@pytest.fixture(scope="module")
def seeds():
    return seed_files()


def test_seeds_are_real_files_of_every_format(seeds):
    formats = {name.split("-")[0] for name in seeds}
    assert formats == set(HEADER_EDITS) == {"jpeg", "png", "webp", "tiff"}
    assert jpeg_segments(seeds["jpeg-baseline"])[-1][1] == 0xDA  # parsed up to the scan
    assert [c[1] for c in png_chunks(seeds["png-rgb"])][0] == b"IHDR"
    assert webp_chunks(seeds["webp-lossy"])[0][1] == b"VP8 " and webp_chunks(seeds["webp-lossless"])[0][1] == b"VP8L"
    assert len(tiff_entries(seeds["tiff-raw"])[2]) >= 8


def test_mutants_are_a_function_of_seed_and_index(seeds):
    first = mutants(seeds, 3, 60)
    assert first == mutants(seed_files(), 3, 60)
    assert mutant(seeds, 3, 17) == first[17]
    assert first != mutants(seeds, 4, 60)
    assert sum(m.data != seeds[m.seed_name] for m in first) >= 55  # (an edit may write the value already there)
    assert {m.mutations[0] for m in first if m.mutations} >= {"bit_flip", "truncate", "png_header", "jpeg_header"}


def test_png_header_edits_keep_the_ihdr_crc_valid_so_decoders_read_the_fields(seeds):
    data = seeds["png-rgb"]
    edited = [png_header_edit(random.Random(k), data) for k in range(40)]
    ihdr_edits = [e for e in edited if e[16:29] != data[16:29] and e[8:16] == data[8:16]]
    assert ihdr_edits
    for e in ihdr_edits:
        assert struct.unpack(">I", e[29:33])[0] == zlib.crc32(e[12:29])


def test_jpeg_frame_edits_write_interesting_dimensions(seeds):
    data = seeds["jpeg-baseline"]
    sof = next(offset for offset, marker, _ in jpeg_segments(data) if marker == 0xC0)
    edits = [jpeg_header_edit(random.Random(k), data) for k in range(200)]
    in_place = [e for e in edits if len(e) == len(data) and e[: sof + 5] == data[: sof + 5]]  # no segment dropped
    heights = {struct.unpack_from(">H", e, sof + 5)[0] for e in in_place}
    assert len(heights - {448}) >= 3 and heights <= {*INTERESTING_16, 448}
