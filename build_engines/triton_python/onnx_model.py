"""Triton python-backend model that runs an ONNX file with onnxruntime (CPU profile).

The embedded Triton has only the python backend, so every ONNX classifier runs through this one file; the GPU
profile serves the same ONNX as a TensorRT plan with identical tensor names. Requests of a dynamic batch are
concatenated into one onnxruntime call.

Memory: onnxruntime's CPU arena keeps the peak of the largest batch it has run (backbone: ~100 MB after load, ~1 GB
after batches of 64), so the process reaches its steady size at load, not minutes into traffic: one warm-up run at
`max_batch_size` in initialize(), on an arena that grows by what is asked (not by powers of two) and without
per-shape memory patterns. RELIABILITY.md "Soak" has the measurements.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

# kSameAsRequested: with the default kNextPowerOfTwo, and onnxruntime's memory patterns (one block per input shape),
# every new batch size could extend the arena again: a bare session on the backbone ONNX, batch 64 once then 60
# mixed batches of 1-64, went 627 -> 818 MB that way, 600 -> 628 MB with both changed (time about the same); the
# arena off (~250 MB) cost 17% of the soak's throughput.
SAME_AS_REQUESTED = 1


def session_options(params: dict[str, str]) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(params.get("ORT_THREADS", "2"))
    options.inter_op_num_threads = 1
    # No busy-waiting between ops: on a small CPU the spinning threads steal cores from DALI and the gateway.
    options.add_session_config_entry("session.intra_op.allow_spinning", params.get("ORT_SPIN", "0"))
    options.enable_mem_pattern = False  # see SAME_AS_REQUESTED
    options.add_session_config_entry("session.use_env_allocators", "1")  # the arena registered in open_session
    return options


def open_session(path: str, params: dict[str, str]) -> ort.InferenceSession:
    # The arena's growth policy is set on an allocator registered with the process's onnxruntime environment (the
    # CPU provider takes no arena options); each model runs in its own stub process, so this is its only session.
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, SAME_AS_REQUESTED, -1, -1))
    return ort.InferenceSession(path, session_options(params), providers=["CPUExecutionProvider"])


def warmup_feeds(config: dict, to_numpy, batch: int | None = None) -> dict[str, np.ndarray]:
    """Zeros for every input at the largest batch one run takes (`batch`, default `max_batch_size`); a variable dim
    (-1) gets 1. `config` is Triton's JSON model config (int64 dims come as strings); `to_numpy` maps TYPE_FP32 etc.
    to a dtype."""
    batch = int(config["max_batch_size"]) if batch is None else batch
    return {
        tensor["name"]: np.zeros((batch, *(max(1, int(d)) for d in tensor["dims"])), to_numpy(tensor["data_type"]))
        for tensor in config["input"]
    }


def run_in_slices(session: ort.InferenceSession, output_names: list[str], feeds: dict, run_batch: int) -> list:
    """The session's outputs for a batch of any size, run `run_batch` rows at a time (the arena keeps the largest
    run's activations) and concatenated."""
    total = len(next(iter(feeds.values())))
    runs = [
        session.run(output_names, {name: value[start : start + run_batch] for name, value in feeds.items()})
        for start in range(0, total, run_batch)
    ]
    return [np.concatenate(parts) for parts in zip(*runs)]


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = open_session(path, params)
        if params.get("IMGSEL_PROJECT_ROOT"):  # the stub runs Python isolated: PYTHONPATH is ignored
            sys.path.insert(0, params["IMGSEL_PROJECT_ROOT"])
        from build_engines.triton_python import batching
        from runtime.idle_memory import IdleTrim
        from runtime.model_params import run_batch

        self.batching = batching
        self.idle = IdleTrim().start()  # freed input/output copies go back to the OS in a pause
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]
        self.run_batch = run_batch(config, params)
        # The arena grows to its peak here, once (backbone: ~0.6 s at load), instead of at the first large batch.
        self.session.run(self.output_names, warmup_feeds(config, pb_utils.triton_string_to_numpy, self.run_batch))

    def execute(self, requests):
        with self.idle.busy():
            return self._execute(requests)

    def _execute(self, requests):
        counts, feeds = self.batching.stacked_inputs(requests, self.input_names)
        results = dict(zip(self.output_names, run_in_slices(self.session, self.output_names, feeds, self.run_batch)))
        return self.batching.responses(results, counts, self.output_names)
