"""gateway.clients.triton: call planning (padding budget, batch cap, spreading a product across the model's
instances) and the 'server unavailable' classification."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from gateway.clients.triton import (
    HASH_NAMES,
    MAX_BATCH,
    MAX_PADDING_FACTOR,
    PADDING_SLACK_BYTES,
    TritonAnalyzer,
    is_unavailable,
    model_instances,
    optional_outputs,
    plan_calls,
)

KB = 1024
MB = 1024 * KB


def check_plan(lengths: list[int], calls: list[list[int]], max_batch: int) -> None:
    """The invariants every plan must keep."""
    flat = [i for call in calls for i in call]
    assert sorted(flat) == list(range(len(lengths))), "every index exactly once"
    for call in calls:
        assert 1 <= len(call) <= max_batch
        sizes = [lengths[i] for i in call]
        real = sum(sizes)
        padded = len(call) * max(sizes)
        # Padded bytes stay within the budget (so the waste, padded - real, does too).
        assert padded <= MAX_PADDING_FACTOR * real + PADDING_SLACK_BYTES, (sizes, padded, real)
    # Sorted by size: calls do not overlap in size, so no call mixes sizes another call could have taken.
    for earlier, later in zip(calls, calls[1:]):
        assert max(lengths[i] for i in earlier) <= min(lengths[i] for i in later)


def test_plan_empty():
    assert plan_calls([]) == []


def test_plan_single():
    assert plan_calls([5 * MB]) == [[0]]


def test_plan_similar_sizes_share_one_call_in_size_order():
    lengths = [300 * KB, 100 * KB, 200 * KB, 250 * KB]
    calls = plan_calls(lengths)
    assert calls == [[1, 2, 3, 0]]
    check_plan(lengths, calls, MAX_BATCH)


@pytest.mark.parametrize("max_batch", [1, 3, 8, MAX_BATCH])
def test_plan_respects_max_batch(max_batch):
    lengths = [100 * KB] * 150
    calls = plan_calls(lengths, max_batch=max_batch)
    check_plan(lengths, calls, max_batch)
    assert len(calls) == -(-150 // max_batch)  # equal sizes: only the cap splits calls


def test_plan_default_max_batch_is_the_models_limit():
    calls = plan_calls([KB] * (MAX_BATCH * 2 + 1))
    assert [len(c) for c in calls] == [MAX_BATCH, MAX_BATCH, 1]


def test_one_huge_file_gets_its_own_call():
    lengths = [40 * KB] * 10 + [15 * MB] + [60 * KB] * 10
    calls = plan_calls(lengths)
    check_plan(lengths, calls, MAX_BATCH)
    huge = next(call for call in calls if 10 in call)
    assert huge == [10]
    assert len(calls) == 2  # the small ones stay together


def test_two_huge_files_do_not_pad_the_small_ones():
    lengths = [8 * MB, 50 * KB, 9 * MB, 30 * KB, 70 * KB]
    calls = plan_calls(lengths)
    check_plan(lengths, calls, MAX_BATCH)
    assert calls == [[3, 1, 4], [0, 2]]


def test_small_files_fit_in_the_slack_together():
    # Tiny files: the constant slack lets very different sizes share a call (few calls matter more there).
    lengths = [1 * KB, 100 * KB, 5 * KB]
    assert plan_calls(lengths) == [[0, 2, 1]]


@pytest.mark.parametrize("seed", range(40))
def test_plan_invariants_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    # Log-uniform sizes from 100 B to 20 MB: thumbnails next to camera originals.
    lengths = [int(x) for x in np.exp(rng.uniform(np.log(100), np.log(20 * MB), n))]
    max_batch = int(rng.choice([1, 2, 7, 16, MAX_BATCH]))
    calls = plan_calls(lengths, max_batch=max_batch)
    check_plan(lengths, calls, max_batch)


def test_plan_with_duplicate_lengths_keeps_every_index():
    lengths = [2 * MB, 2 * MB, 10, 10, 2 * MB]
    calls = plan_calls(lengths)
    check_plan(lengths, calls, MAX_BATCH)


# ---------------------------------------------------------------------------------------------- is_unavailable


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("failed to connect to all addresses", "StatusCode.UNAVAILABLE"),
        ("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"),
        ("Locally cancelled by application!", "StatusCode.CANCELLED"),
        ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1", None),
    ],
)
def test_is_unavailable_true(message, status):
    assert is_unavailable(InferenceServerException(message, status=status))


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("in ensemble 'analyze', failed to decode image", "StatusCode.INTERNAL"),
        ("unexpected shape for input 'IMAGE_BYTES'", "StatusCode.INVALID_ARGUMENT"),
        ("Request for unknown model: 'head_apparel' is not found", "StatusCode.NOT_FOUND"),
        ("out of memory", None),
    ],
)
def test_is_unavailable_false(message, status):
    assert not is_unavailable(InferenceServerException(message, status=status))


def test_optional_outputs_take_the_heads_and_the_hashes_only_when_all_three_are_served():
    heads = ["CATEGORY_PROBS", "TYPE_PROBS_apparel", "COMPLIANCE_weapons", "SEARCH_EMBEDDING"]
    base = ["VALID", "ORIG_SIZE", "THUMB", "EMBEDDING", "QUALITY_SCORES"]
    assert optional_outputs(base + heads) == heads
    assert optional_outputs(base + heads + ["PHASH", "DHASH_EDGE", "HSV_HIST"]) == heads + HASH_NAMES
    assert optional_outputs(base + ["PHASH", "HSV_HIST"]) == []


@pytest.mark.parametrize(("n", "spread", "sizes"), [(8, 2, [4, 4]), (7, 2, [4, 3]), (8, 3, [3, 3, 2]), (1, 2, [1])])
def test_a_spread_plan_shares_the_images_among_the_instances(n, spread, sizes):
    lengths = [100 * KB] * n
    calls = plan_calls(lengths, spread=spread)
    assert [len(c) for c in calls] == sizes
    check_plan(lengths, calls, MAX_BATCH)


def test_model_instances_of_a_python_model_an_ensemble_and_a_bare_config():
    assert model_instances({"backend": "python", "instance_group": [{"kind": "KIND_CPU", "count": 2}]}) == 2
    assert model_instances({"instance_group": [{"count": "2"}, {"count": 1}]}) == 3  # JSON may quote int64s
    assert model_instances({"platform": "ensemble"}) == 1
    assert model_instances({}) == 1


class Answer:
    def __init__(self, n: int):
        self.arrays = {
            "VALID": np.ones((n, 1), bool),
            "ORIG_SIZE": np.full((n, 2), 100, np.int32),
            "THUMB": np.zeros((n, 128, 128, 3), np.uint8),
            "EMBEDDING": np.zeros((n, 4), np.float32),
            "QUALITY_SCORES": np.zeros((n, 3), np.float32),
        }

    def as_numpy(self, name):
        return self.arrays[name]


class TwoInstanceTriton:
    """A server whose analyze model runs two instances; records the size of every call and holds each call until
    released, so that calls can be in flight together."""

    def __init__(self):
        self.sizes: list[int] = []
        self.release = asyncio.Event()

    async def infer(self, model, inputs, outputs=None, client_timeout=None):
        n = inputs[0].shape()[0]
        self.sizes.append(n)
        await self.release.wait()
        return Answer(n)

    async def get_model_metadata(self, model, as_json=False):
        return {"outputs": [{"name": n} for n in ("VALID", "ORIG_SIZE", "THUMB", "EMBEDDING", "QUALITY_SCORES")]}

    async def get_model_config(self, model, as_json=False):
        return {"config": {"backend": "python", "instance_group": [{"kind": "KIND_CPU", "count": 2}]}}


def test_a_product_alone_is_spread_over_the_instances_but_not_beside_another():
    files = [bytes([k]) * (1000 + k) for k in range(8)]

    async def scenario():
        triton = TritonAnalyzer("127.0.0.1:1", timeout_s=5.0, breaker_cooldown_s=1.0)
        triton.client = server = TwoInstanceTriton()
        first = asyncio.create_task(triton.analyze(files))  # alone: split in two
        while len(server.sizes) < 2:
            await asyncio.sleep(0)
        second = asyncio.create_task(triton.analyze(files))  # the first still in flight: whole
        while len(server.sizes) < 3:
            await asyncio.sleep(0)
        server.release.set()
        results = await asyncio.gather(first, second)
        third = await triton.analyze(files)  # alone again
        return server.sizes, results, third

    sizes, results, third = asyncio.run(scenario())
    assert sizes == [4, 4, 8, 4, 4]
    for result in [*results, third]:
        assert [r.valid for r in result] == [True] * 8


class AnalyzeNotLoaded(TwoInstanceTriton):
    async def get_model_config(self, model, as_json=False):
        message = "Request for unknown model: 'analyze' is not found"
        raise InferenceServerException(message, status="StatusCode.NOT_FOUND")


def test_an_analyze_model_triton_cannot_describe_is_unavailable_not_a_crash():
    from gateway.clients.triton import TritonUnavailable

    async def scenario():
        triton = TritonAnalyzer("127.0.0.1:1", timeout_s=5.0, breaker_cooldown_s=1.0)
        triton.client = AnalyzeNotLoaded()
        with pytest.raises(TritonUnavailable, match="could not describe analyze"):
            await triton.analyze([b"x" * 100])
        return triton._calls_in_flight

    assert asyncio.run(scenario()) == 0
