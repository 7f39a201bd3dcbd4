"""The cpu profile's preprocess model hashes every thumbnail inside Triton: through the real server, the gateway's
Triton client receives PHASH, DHASH_EDGE and HSV_HIST equal to what the gateway computes from THUMB itself."""

from __future__ import annotations

import asyncio

import numpy as np

from gateway.clients.triton import TritonAnalyzer
from gateway.hashing import compute_hashes
from tests.helpers import blurred, corrupt_jpeg, encode, product_photo


def test_readyz_lists_heads_not_hashes(client):
    heads = client.get("/readyz").json()["heads"]
    assert not {"PHASH", "DHASH_EDGE", "HSV_HIST"} & set(heads)


def test_triton_returns_the_hashes_the_gateway_would_compute(stack):
    files = [
        encode(product_photo(800, (200, 40, 40), seed=1)),
        corrupt_jpeg(encode(product_photo(300, seed=2))),
        encode(blurred(product_photo(600, (30, 90, 200), seed=3)), "PNG"),
    ]

    async def analyze():
        analyzer = TritonAnalyzer(f"127.0.0.1:{stack.triton_grpc_port}", timeout_s=60, breaker_cooldown_s=1)
        try:
            return await analyzer.analyze(files)
        finally:
            await analyzer.close()

    raws = asyncio.run(analyze())
    assert [raw is not None and raw.valid for raw in raws] == [True, False, True]
    for raw in (raws[0], raws[2]):
        assert raw.hashes is not None
        phash, dhash, hist = raw.hashes
        expected = compute_hashes(raw.thumb)
        assert (phash, dhash) == (expected.phash, expected.dhash_edge)
        np.testing.assert_array_equal(hist, expected.hsv_hist)
