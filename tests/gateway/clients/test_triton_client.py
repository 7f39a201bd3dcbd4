"""gateway.clients.triton: call planning (padding budget, batch cap) and the 'server unavailable' classification."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from gateway.clients.triton import (
    HASH_NAMES,
    MAX_BATCH,
    MAX_PADDING_FACTOR,
    PADDING_SLACK_BYTES,
    is_unavailable,
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
