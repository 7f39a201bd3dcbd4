"""The onnxruntime python-backend model (build_engines/triton_python/onnx_model.py), run outside Triton: the stub's
`triton_python_backend_utils` is replaced by a small stand-in with the calls the model makes."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

MODEL_FILE = Path(__file__).parents[2] / "build_engines" / "triton_python" / "onnx_model.py"
DTYPES = {"TYPE_FP32": np.float32, "TYPE_INT32": np.int32, "TYPE_UINT8": np.uint8}


class Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


class Response:
    def __init__(self, output_tensors):
        self.outputs = {t.name: t.array for t in output_tensors}


@pytest.fixture(scope="module")
def onnx_model():
    utils = types.ModuleType("triton_python_backend_utils")
    utils.Tensor, utils.InferenceResponse = Tensor, Response
    utils.triton_string_to_numpy = DTYPES.__getitem__
    utils.get_input_tensor_by_name = lambda request, name: next(t for t in request if t.name == name)
    saved = sys.modules.get(utils.__name__)
    sys.modules[utils.__name__] = utils
    spec = importlib.util.spec_from_file_location("imgsel_onnx_model_under_test", MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    if saved is None:
        del sys.modules[utils.__name__]
    else:
        sys.modules[utils.__name__] = saved


def triton_config(max_batch: int) -> dict:
    """Triton's JSON model config (int64 dims are strings there) for a two-input model."""
    return {
        "max_batch_size": max_batch,
        "input": [
            {"name": "EMBEDDING", "data_type": "TYPE_FP32", "dims": ["4"]},
            {"name": "FEATURES", "data_type": "TYPE_FP32", "dims": ["2"]},
        ],
        "output": [{"name": "SCORES", "data_type": "TYPE_FP32", "dims": ["2"]}],
        "parameters": {"ORT_THREADS": {"string_value": "1"}},
    }


def write_head(path: Path) -> np.ndarray:
    """SCORES = EMBEDDING @ W + FEATURES, batch axis dynamic."""
    weights = np.arange(8, dtype=np.float32).reshape(4, 2)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["EMBEDDING", "W"], ["P"]), helper.make_node("Add", ["P", "FEATURES"], ["SCORES"])],
        "head",
        [
            helper.make_tensor_value_info("EMBEDDING", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("FEATURES", TensorProto.FLOAT, ["batch", 2]),
        ],
        [helper.make_tensor_value_info("SCORES", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor("W", TensorProto.FLOAT, [4, 2], weights.ravel())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return weights


def load(onnx_model, repository: Path, max_batch: int, run_batch: int | None = None):
    model = onnx_model.TritonPythonModel()
    config = triton_config(max_batch)
    if run_batch is not None:
        config["parameters"]["RUN_BATCH"] = {"string_value": str(run_batch)}
    config = json.dumps(config)
    model.initialize({"model_config": config, "model_repository": str(repository), "model_version": "1"})
    return model


def test_warmup_feeds_are_zeros_at_the_largest_batch(onnx_model):
    config = triton_config(64)
    config["input"].append({"name": "IMAGE_BYTES", "data_type": "TYPE_UINT8", "dims": ["-1"]})
    feeds = onnx_model.warmup_feeds(config, DTYPES.__getitem__)
    assert {name: (a.shape, a.dtype) for name, a in feeds.items()} == {
        "EMBEDDING": ((64, 4), np.float32),
        "FEATURES": ((64, 2), np.float32),
        "IMAGE_BYTES": ((64, 1), np.uint8),  # a variable dim gets 1
    }
    assert not any(a.any() for a in feeds.values())


def test_session_keeps_the_arena_without_memory_patterns(onnx_model):
    options = onnx_model.session_options({"ORT_THREADS": "3"})
    assert options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)


def test_a_warmed_up_model_answers_each_request_of_a_batch(onnx_model, tmp_path):
    (tmp_path / "1").mkdir()
    weights = write_head(tmp_path / "1" / "model.onnx")
    model = load(onnx_model, tmp_path, max_batch=8)
    rng = np.random.default_rng(0)
    requests = []
    for count in (3, 1, 4):
        embedding, features = rng.random((count, 4), np.float32), rng.random((count, 2), np.float32)
        requests.append([Tensor("EMBEDDING", embedding), Tensor("FEATURES", features)])
    responses = model.execute(requests)
    for request, response in zip(requests, responses):
        embedding, features = (t.array for t in request)
        np.testing.assert_allclose(response.outputs["SCORES"], embedding @ weights + features, rtol=1e-6)


def test_the_warmup_runs_at_max_batch_size_so_a_smaller_onnx_batch_fails_at_load(onnx_model, tmp_path):
    (tmp_path / "1").mkdir()
    write_head(tmp_path / "1" / "model.onnx")
    fixed = onnx.load(tmp_path / "1" / "model.onnx")
    for value in list(fixed.graph.input) + list(fixed.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 4  # an export without a dynamic batch axis
    onnx.save(fixed, tmp_path / "1" / "model.onnx")
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        load(onnx_model, tmp_path, max_batch=8)


def test_run_batch_splits_a_dynamic_batch_into_smaller_runs_with_the_same_answers(onnx_model, tmp_path):
    """RUN_BATCH (text_detect): the warm-up and every run take at most that many images; the answers are unchanged."""
    (tmp_path / "1").mkdir()
    weights = write_head(tmp_path / "1" / "model.onnx")
    model = load(onnx_model, tmp_path, max_batch=16, run_batch=3)
    assert model.run_batch == 3
    sizes = []
    run = model.session.run
    model.session.run = lambda names, feeds: sizes.append(len(feeds["EMBEDDING"])) or run(names, feeds)
    rng = np.random.default_rng(1)
    requests = [
        [Tensor("EMBEDDING", rng.random((n, 4), np.float32)), Tensor("FEATURES", rng.random((n, 2), np.float32))]
        for n in (5, 2)
    ]
    responses = model.execute(requests)
    assert sizes == [3, 3, 1]
    for request, response in zip(requests, responses):
        embedding, features = (t.array for t in request)
        np.testing.assert_allclose(response.outputs["SCORES"], embedding @ weights + features, rtol=1e-6)
