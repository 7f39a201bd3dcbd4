"""Triton python-backend model `preprocess_features` (gpu profile): the classical quality measures that follow the
DALI-backend `preprocess` model, which decodes on the GPU but cannot compute them (the object box needs a median of
the border colour, which DALI has no operator for) nor flag an image as undecodable (DALI fails the whole request).

Inputs THUMB, LAPLACIAN (int16, zero-padded to the blur side), LAPLACIAN_SIZE (its true height, width); outputs VALID
and QUALITY_FEATURES, the same tensors the cpu profile's python `preprocess` model returns. numpy only, nothing from
the project outside this folder: the NGC tritonserver image's Python has numpy but not Pillow, DALI or the project.
`imgsel_measures.py` beside this file is generated from preprocessing/runner.py, so both profiles measure alike.
"""

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imgsel_measures import quality_features  # noqa: E402  (generated beside this file)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        # The generator writes the tensors in this order: THUMB, LAPLACIAN, LAPLACIAN_SIZE -> VALID, QUALITY_FEATURES.
        self.thumb, self.laplacian, self.size = (tensor["name"] for tensor in config["input"])
        self.valid, self.features = (tensor["name"] for tensor in config["output"])

    def execute(self, requests):
        responses = []
        for request in requests:
            thumbs = pb_utils.get_input_tensor_by_name(request, self.thumb).as_numpy()
            laplacians = pb_utils.get_input_tensor_by_name(request, self.laplacian).as_numpy()
            sizes = pb_utils.get_input_tensor_by_name(request, self.size).as_numpy()
            # int16 holds DALI's 3x3 Laplacian of 8-bit grey exactly (|value| <= 8160); float32 as the cpu runner.
            features = np.stack(
                [
                    quality_features(thumbs[i], laplacians[i, :height, :width].astype(np.float32))
                    for i, (height, width) in enumerate(sizes.reshape(-1, 2))
                ]
            ).astype(np.float32)
            # Every image that reaches this step was decoded: DALI fails the request of an undecodable one.
            valid = np.ones((len(thumbs), 1), dtype=bool)
            tensors = [pb_utils.Tensor(self.valid, valid), pb_utils.Tensor(self.features, features)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
