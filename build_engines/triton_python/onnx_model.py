"""Triton python-backend model that runs an ONNX file with onnxruntime (CPU profile).

The embedded Triton has only the python backend, so every ONNX classifier runs through this one file; the GPU
profile serves the same ONNX as a TensorRT plan with identical tensor names. Requests of a dynamic batch are
concatenated into one onnxruntime call.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("ORT_THREADS", "2"))
        options.inter_op_num_threads = 1
        # No busy-waiting between ops: on a small CPU the spinning threads steal cores from DALI and the gateway.
        options.add_session_config_entry("session.intra_op.allow_spinning", params.get("ORT_SPIN", "0"))
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]

    def execute(self, requests):
        batches = {name: [] for name in self.input_names}
        counts = []
        for request in requests:
            for name in self.input_names:
                batches[name].append(pb_utils.get_input_tensor_by_name(request, name).as_numpy())
            counts.append(len(batches[self.input_names[0]][-1]))
        feeds = {name: np.concatenate(parts) for name, parts in batches.items()}
        results = self.session.run(self.output_names, feeds)
        responses, start = [], 0
        for count in counts:
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(result[start : start + count]))
                for name, result in zip(self.output_names, results)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += count
        return responses
