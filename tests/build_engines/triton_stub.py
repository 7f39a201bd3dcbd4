"""Runs a python-backend model.py outside Triton: a stand-in for the stub's `triton_python_backend_utils` with the
calls the project's models make, and a loader that imports a model file under it."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class Tensor:
    def __init__(self, name: str, array: np.ndarray):
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor]):
        self.outputs = {t.name: t.array for t in output_tensors}


def stand_in() -> types.ModuleType:
    utils = types.ModuleType("triton_python_backend_utils")
    utils.Tensor, utils.InferenceResponse = Tensor, InferenceResponse
    utils.get_input_tensor_by_name = lambda request, name: next(t for t in request if t.name == name)
    return utils


@contextlib.contextmanager
def python_model(model_file: Path, config: dict) -> Iterator[object]:
    """An initialised TritonPythonModel from `model_file`; `config` is Triton's JSON form of config.pbtxt.
    A request is a list of Tensor; execute() returns InferenceResponse objects."""
    utils = stand_in()
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    saved = sys.modules.get(utils.__name__)
    sys.modules[utils.__name__] = utils
    try:
        spec = importlib.util.spec_from_file_location(f"model_under_test_{model_file.parent.parent.name}", model_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        # As Triton calls it: the model's folder and the version folder's name beside the config.
        folder = model_file.resolve().parent
        model.initialize(
            {"model_config": json.dumps(config), "model_repository": str(folder.parent), "model_version": folder.name}
        )
        yield model
    finally:
        sys.path[:] = saved_path  # a model may put its own folder on the path for the modules beside it
        folder = str(model_file.resolve().parent)
        for name in set(sys.modules) - saved_modules:  # the modules it imported from there, not numpy & co.
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(folder):
                del sys.modules[name]
        if saved is not None:
            sys.modules[utils.__name__] = saved


def json_config(config) -> dict:
    """Triton's JSON model config (what the stub passes to initialize) from a ModelConfig protobuf."""
    from google.protobuf import json_format

    return json_format.MessageToDict(config, preserving_proto_field_name=True)
