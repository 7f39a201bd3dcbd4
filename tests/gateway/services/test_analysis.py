"""gateway.services.analysis: hashes from Triton when the profile computes them there, else from the thumbnail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gateway.hashing import compute_hashes
from gateway.schemas import ImageIn
from gateway.services import analysis
from tests.gateway.services.fakes import FakeTriton, analysis_step, jpeg_b64, raw

pytestmark = pytest.mark.anyio


def images(count: int) -> list[ImageIn]:
    return [ImageIn(id=f"i{k}", data=jpeg_b64(k)) for k in range(count)]


async def test_hashes_served_by_triton_are_used_as_they_are(monkeypatch):
    served = [(0x0123456789ABCDEF + k, 0xFEDCBA9876543210 - k, np.full(28, 1 / 28, np.float32)) for k in range(2)]
    raws = [dataclasses.replace(raw(k), hashes=served[k]) for k in range(2)]

    def no_hashing_here(thumb):
        raise AssertionError("the gateway hashed a thumbnail Triton had hashed")

    monkeypatch.setattr(analysis, "compute_hashes", no_hashing_here)
    analysed = await analysis_step(FakeTriton(raws)).analyze(images(2))
    for item, (phash, dhash, hist) in zip(analysed, served):
        assert (item.analysis.hashes.phash, item.analysis.hashes.dhash_edge) == (phash, dhash)
        assert item.analysis.hashes.hsv_hist is hist


@pytest.mark.parametrize("served", [False, True], ids=["gpu-profile", "mixed"])
async def test_thumbnails_without_served_hashes_are_hashed_here(served):
    raws = [raw(0), raw(1)]
    if served:
        raws[0] = dataclasses.replace(raws[0], hashes=(1, 2, np.full(28, 1 / 28, np.float32)))
    analysed = await analysis_step(FakeTriton(raws)).analyze(images(2))
    expected = compute_hashes(raws[1].thumb)
    assert (analysed[1].analysis.hashes.phash, analysed[1].analysis.hashes.dhash_edge) == (
        expected.phash,
        expected.dhash_edge,
    )
    np.testing.assert_array_equal(analysed[1].analysis.hashes.hsv_hist, expected.hsv_hist)
    assert analysed[0].analysis.hashes.phash == (1 if served else compute_hashes(raws[0].thumb).phash)
