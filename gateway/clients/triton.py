"""Async gRPC client for the Triton `analyze` ensemble (one call gives every head's output for every image).

One `analyze` call carries many images: files are zero-padded to the longest file of the call (IMAGE_BYTES is a
ragged uint8 input) with their true lengths in IMAGE_LENGTH. Calls are planned so padding stays small. A server
that is down, too slow or failing raises TritonUnavailable (the API answers 503 with Retry-After); a call that the
server rejects because of one undecodable image is retried image by image so only that image fails.

Every call goes through a circuit breaker (gateway.clients.breaker): once the server is known to be down, calls fail
at once with TritonUnavailable for a cooldown instead of each waiting out a timeout, then one probe call tests it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from contract.tensors import (
    ANALYZE_OUTPUTS,
    CATEGORY_HEAD_OUTPUT,
    COMPLIANCE_PREFIX,
    DHASH_EDGE,
    ENSEMBLE,
    HASH_OUTPUTS,
    HSV_HIST,
    IMAGE_BYTES,
    IMAGE_LENGTH,
    MAX_BATCH,
    PHASH,
    QUALITY_OUTPUTS,
    SEARCH_EMBEDDING,
    TYPE_PROBS_PREFIX,
)
from gateway.clients.breaker import CircuitBreaker
from gateway.timing import TRITON, phase

# numpy dtype name (contract) -> Triton wire dtype
WIRE_DTYPES = {"bool": "BOOL", "uint8": "UINT8", "int32": "INT32", "uint64": "UINT64", "float32": "FP32"}
# Padding budget of one call: padded bytes may exceed real bytes by this factor (plus a small constant).
MAX_PADDING_FACTOR = 1.5
PADDING_SLACK_BYTES = 256 * 1024
UNAVAILABLE_CODES = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED")
# A python-backend model whose stub process died: Triton 2.51 keeps the model READY and fails every call with this.
DEAD_STUB_MESSAGE = "is not healthy"
READY_CACHE_S = 5.0
# gRPC reconnects with exponential backoff up to 120 s by default; a restarted server must be found within seconds.
RECONNECT_BACKOFF_MS = {"initial": 250, "min": 250, "max": 1000}
MAX_MESSAGE_BYTES = 2**31 - 1  # tritonclient's own default (its channel options are replaced, so restated)
T = TypeVar("T")


class TritonUnavailable(RuntimeError):
    pass


@dataclass
class RawAnalysis:
    valid: bool
    height: int
    width: int
    thumb: np.ndarray  # uint8 [128, 128, 3]
    embedding: np.ndarray  # float32 [EMBEDDING_DIM], L2-normalised
    quality: dict[str, float]  # QUALITY_OUTPUTS -> score in [0, 1]
    category_probs: np.ndarray | None = None  # CATEGORY_PROBS; None when the category head is not served
    # TYPE_PROBS_<category> of every served type head, by category name (the caller picks its category's).
    type_probs: dict[str, np.ndarray] = field(default_factory=dict)
    # (PHASH, DHASH_EDGE, HSV_HIST) where the profile hashes inside Triton (cpu); None: hash THUMB here.
    hashes: tuple[int, int, np.ndarray] | None = None
    # COMPLIANCE_<check> of every served compliance head, by check name.
    compliance: dict[str, float] = field(default_factory=dict)
    search_embedding: np.ndarray | None = None  # SEARCH_EMBEDDING; None when the search head is not served


HASH_NAMES = [t.name for t in HASH_OUTPUTS]


def optional_outputs(names: list[str]) -> list[str]:
    """The ensemble's outputs beyond ANALYZE_OUTPUTS that the gateway reads: the category head's, the type heads',
    the compliance heads' and the search head's (present exactly when those heads are trained into the vision model),
    and the hashes (all three, or none)."""
    heads = [
        n
        for n in names
        if n in (CATEGORY_HEAD_OUTPUT, SEARCH_EMBEDDING.name) or n.startswith((TYPE_PROBS_PREFIX, COMPLIANCE_PREFIX))
    ]
    return heads + (HASH_NAMES if set(HASH_NAMES) <= set(names) else [])


def plan_calls(lengths: list[int], max_batch: int = MAX_BATCH, spread: int = 1) -> list[list[int]]:
    """Group image indices into calls: sorted by size so each call pads little, at most `max_batch` per call, and
    with `spread` > 1 at most ceil(n / spread) per call, so that `spread` model instances share the images."""
    if spread > 1:
        max_batch = min(max_batch, -(-len(lengths) // spread))
    calls: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        longest = lengths[index]  # sorted ascending: the newcomer is the longest of the call
        fits = (
            len(current) < max_batch
            and (len(current) + 1) * longest <= MAX_PADDING_FACTOR * (total + longest) + PADDING_SLACK_BYTES
        )
        if current and not fits:
            calls.append(current)
            current, total = [], 0
        current.append(index)
        total += longest
    if current:
        calls.append(current)
    return calls


def model_instances(config: dict) -> int:
    """How many instances of a model run side by side, from its config (Triton's JSON form): the sum of its instance
    groups' counts; 1 for an ensemble (its steps are scheduled one after the other)."""
    if config.get("platform") == "ensemble":
        return 1
    return max(1, sum(int(group.get("count", 1)) for group in config.get("instance_group", [])))


def is_decode_error(error: InferenceServerException) -> bool:
    """A DALI decoder failure (the whole batch fails in DALI; the image is to blame, not the server)."""
    message = str(error.message() or "").lower()
    return "decoders.image" in message or "decode" in message


def is_unavailable(error: InferenceServerException) -> bool:
    return any(code in str(error.status()) for code in UNAVAILABLE_CODES) or "connect" in str(error).lower()


def is_server_fault(error: InferenceServerException) -> bool:
    """The server (not this request) is broken: unreachable, too slow, or a model process died."""
    return is_unavailable(error) or DEAD_STUB_MESSAGE in str(error.message() or "")


def channel_args() -> list[tuple[str, int]]:
    keepalive = grpcclient.KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", int(keepalive.keepalive_permit_without_calls)),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS["initial"]),
        ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS["min"]),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS["max"]),
        # With a dns:/// target naming several Triton pods (the chart's headless Service): one connection to each,
        # calls spread over them. With one address it behaves as the default (pick_first).
        ("grpc.lb_policy_name", "round_robin"),
    ]


class TritonAnalyzer:
    def __init__(self, url: str, timeout_s: float, breaker_cooldown_s: float):
        self.url = url
        self.timeout_s = timeout_s
        self.breaker = CircuitBreaker(breaker_cooldown_s)
        self.client = grpcclient.InferenceServerClient(url, channel_args=channel_args())
        self._ready_models: set[str] = set()
        self._ready_at = 0.0
        self._head_outputs: list[str] = []
        self._instances = 1  # of the analyze model, read with its outputs
        self._outputs_at = -READY_CACHE_S
        self._calls_in_flight = 0  # analyze() calls of this gateway waiting on Triton

    async def close(self) -> None:
        await self.client.close()

    async def _guarded(self, what: str, call: Awaitable[T], timeout_s: float) -> T:
        """Run one call through the breaker; server faults become TritonUnavailable and open it."""
        if not self.breaker.allow():
            call.close()  # never awaited: no gRPC attempt while the breaker is open
            status = self.breaker.status()
            raise TritonUnavailable(
                f"Triton unreachable for {status.down_for_s:.0f} s (circuit {status.state.value}; "
                f"last error: {status.last_error})"
            )
        try:
            with phase(TRITON):  # the request's time waiting on Triton (Server-Timing, gateway.timing)
                result = await asyncio.wait_for(call, timeout_s)
        except TimeoutError as error:
            self.breaker.record_failure(f"{what}: no answer within {timeout_s:g} s")
            raise TritonUnavailable(f"Triton did not answer {what} within {timeout_s:g} s") from error
        except InferenceServerException as error:
            if is_server_fault(error):
                self.breaker.record_failure(f"{what}: {error.message()}")
                raise TritonUnavailable(f"Triton unavailable at {self.url}: {error.message()}") from error
            self.breaker.record_success()  # the server answered; the request was at fault
            raise
        except BaseException:
            self.breaker.record_abandoned()  # cancelled (the caller went away): no verdict on the server
            raise
        self.breaker.record_success()
        return result

    async def _infer(self, model: str, inputs, outputs: list[str]):
        call = self.client.infer(
            model,
            inputs,
            outputs=[grpcclient.InferRequestedOutput(o) for o in outputs],
            client_timeout=self.timeout_s,
        )
        return await self._guarded(model, call, self.timeout_s + 1.0)

    async def _analyze_call(self, files: list[bytes]) -> list[RawAnalysis]:
        longest = max(len(f) for f in files)
        padded = np.zeros((len(files), longest), dtype=np.uint8)
        for row, data in enumerate(files):
            padded[row, : len(data)] = np.frombuffer(data, dtype=np.uint8)
        lengths = np.array([[len(f)] for f in files], dtype=np.int32)
        inputs = [
            grpcclient.InferInput(IMAGE_BYTES.name, list(padded.shape), WIRE_DTYPES[IMAGE_BYTES.dtype]),
            grpcclient.InferInput(IMAGE_LENGTH.name, list(lengths.shape), WIRE_DTYPES[IMAGE_LENGTH.dtype]),
        ]
        inputs[0].set_data_from_numpy(padded)
        inputs[1].set_data_from_numpy(lengths)
        names = [t.name for t in ANALYZE_OUTPUTS]  # VALID, ORIG_SIZE, THUMB, EMBEDDING, QUALITY_SCORES
        optional = await self.head_outputs()
        result = await self._infer(ENSEMBLE, inputs, names + optional)
        valid, size, thumb, embedding, quality = (result.as_numpy(n) for n in names)
        category = result.as_numpy(CATEGORY_HEAD_OUTPUT) if CATEGORY_HEAD_OUTPUT in optional else None
        types = {
            n.removeprefix(TYPE_PROBS_PREFIX): result.as_numpy(n) for n in optional if n.startswith(TYPE_PROBS_PREFIX)
        }
        checks = {
            n.removeprefix(COMPLIANCE_PREFIX): result.as_numpy(n) for n in optional if n.startswith(COMPLIANCE_PREFIX)
        }
        search = result.as_numpy(SEARCH_EMBEDDING.name) if SEARCH_EMBEDDING.name in optional else None
        hashes = None
        if PHASH.name in optional:
            phash, dhash, hist = (result.as_numpy(n) for n in (PHASH.name, DHASH_EDGE.name, HSV_HIST.name))
            hashes = [(int(phash[i, 0]), int(dhash[i, 0]), hist[i]) for i in range(len(files))]
        return [
            RawAnalysis(
                bool(valid[i, 0]),
                int(size[i, 0]),
                int(size[i, 1]),
                thumb[i],
                embedding[i],
                dict(zip(QUALITY_OUTPUTS, map(float, quality[i]))),
                None if category is None else category[i],
                {name: probs[i] for name, probs in types.items()},
                None if hashes is None else hashes[i],
                {check: float(scores[i, 0]) for check, scores in checks.items()},
                None if search is None else search[i],
            )
            for i in range(len(files))
        ]

    async def _analyze_isolating(self, files: list[bytes]) -> list[RawAnalysis | None]:
        try:
            return await self._analyze_call(files)
        except InferenceServerException as error:
            # The cpu profile flags bad images in VALID and never fails a call for them; a decoder error here comes
            # from a profile without per-image flags. Anything else is the server's fault, not the images'.
            if not is_decode_error(error):
                raise TritonUnavailable(f"Triton failed the analyze call: {error.message()}") from error
            if len(files) == 1:
                return [None]
        parts = await asyncio.gather(*(self._analyze_isolating([f]) for f in files))
        return [part[0] for part in parts]

    async def analyze(self, files: list[bytes]) -> list[RawAnalysis | None]:
        """One result per file, in order; None for a file the server could not process."""
        if not files:
            return []
        self._calls_in_flight += 1  # counted before any await: products arriving together see each other
        try:
            await self.head_outputs()  # refreshes the instance count
            # Alone, a product is split across the model's instances (the cpu profile's one-model `analyze`: one
            # thread each), so one client's latency uses every core; beside other calls it stays whole, as batching
            # prefers.
            spread = self._instances if self._calls_in_flight == 1 else 1
            calls = plan_calls([len(f) for f in files], spread=spread)
            outcomes = await asyncio.gather(*(self._analyze_isolating([files[i] for i in call]) for call in calls))
        finally:
            self._calls_in_flight -= 1
        results: list[RawAnalysis | None] = [None] * len(files)
        for call, outcome in zip(calls, outcomes):
            for index, raw in zip(call, outcome):
                results[index] = raw
        return results

    async def head_outputs(self) -> list[str]:
        """optional_outputs of the served ensemble, from its metadata, cached like ready_models (a model repository
        reloaded with another set of heads is seen within READY_CACHE_S); its instance count with them."""
        if time.monotonic() - self._outputs_at > READY_CACHE_S:
            try:
                metadata = await self._guarded(
                    "analyze metadata", self.client.get_model_metadata(ENSEMBLE, as_json=True), 5.0
                )
                config = await self._guarded(
                    "analyze config", self.client.get_model_config(ENSEMBLE, as_json=True), 5.0
                )
            except InferenceServerException as error:  # e.g. analyze not loaded (yet): unavailable, not our fault
                raise TritonUnavailable(f"Triton could not describe {ENSEMBLE}: {error.message()}") from error
            self._head_outputs = optional_outputs([o["name"] for o in metadata.get("outputs", [])])
            self._instances = model_instances(config.get("config", {}))
            self._outputs_at = time.monotonic()
        return self._head_outputs

    async def model_states(self) -> dict[str, str]:
        """Every model in the repository with its state (READY, UNAVAILABLE, ...)."""
        try:
            index = await self._guarded("model index", self.client.get_model_repository_index(as_json=True), 5.0)
        except InferenceServerException as error:
            raise TritonUnavailable(f"Triton could not list its models: {error.message()}") from error
        return {m["name"]: m.get("state", "UNKNOWN") for m in index.get("models", [])}

    async def ready_models(self) -> set[str]:
        """READY model names, cached briefly (routing asks on every request)."""
        if time.monotonic() - self._ready_at > READY_CACHE_S:
            states = await self.model_states()
            self._ready_models = {name for name, state in states.items() if state == "READY"}
            self._ready_at = time.monotonic()
        return self._ready_models
