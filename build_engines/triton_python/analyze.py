"""Triton python-backend model `analyze` of the cpu profile: an image's whole analysis in one process, the DALI
preprocessing with its measures and hashes (preprocessing.runner) and then the vision ONNX (backbone and every head,
`1/vision.onnx`) in onnxruntime, on the same batch.

The same outputs as the `preprocess` -> `vision` ensemble it replaces where no compliance model is served
(build_engines.repository), without the hand-off between two stub processes: PIXELS (600 KB an image) never leaves
the process, and Triton schedules one model instead of three. Measured against the ensemble on the same stack:
1.4-1.8 CPU ms an image less, 120-126 -> 137-139 images/s at 8 clients (BENCHMARKS.md, issue #13).
Inputs: IMAGE_BYTES uint8 [-1] (ragged: a request's files zero-padded to its longest) and IMAGE_LENGTH int32 [1].
"""

import json
import os
import sys

import numpy as np


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        sys.path.insert(0, params["IMGSEL_PROJECT_ROOT"])  # the stub runs Python isolated: PYTHONPATH is ignored
        from build_engines.triton_python import batching
        from build_engines.triton_python.onnx_model import open_session, warmup_feeds
        from contract.tensors import IMAGE_BYTES, IMAGE_LENGTH, PIXELS, QUALITY_FEATURES
        from preprocessing.runner import PreprocessRunner
        from runtime.idle_memory import IdleTrim
        from runtime.model_params import run_batch

        self.batching = batching
        self.input_names = IMAGE_BYTES.name, IMAGE_LENGTH.name
        self.run_batch = run_batch(config, params)  # DALI's and onnxruntime's largest run: both keep its buffers
        self.runner = PreprocessRunner(max_batch=self.run_batch, threads=int(params.get("DALI_THREADS", "1")))
        vision_file = os.path.join(args["model_repository"], args["model_version"], params["VISION_FILE"])
        self.session = open_session(vision_file, params)
        self.vision_inputs = [PIXELS.name, QUALITY_FEATURES.name]
        self.vision_outputs = [o.name for o in self.session.get_outputs()]
        self.output_names = [o["name"] for o in config["output"]]
        self.idle = IdleTrim().start()  # DALI's and onnxruntime's freed buffers go back to the OS in a pause
        # onnxruntime's arena grows to its peak here, once, instead of at the first full batch.
        inputs = [{"name": t.name, "data_type": t.dtype, "dims": t.dims} for t in (PIXELS, QUALITY_FEATURES)]
        warm = warmup_feeds({"max_batch_size": self.run_batch, "input": inputs}, np.dtype)
        self.session.run(self.vision_outputs, warm)

    def execute(self, requests):
        with self.idle.busy():
            return self._execute(requests)

    def _execute(self, requests):
        counts, files = self.batching.encoded_files(requests, *self.input_names)
        # A dynamic batch larger than run_batch goes through both steps a slice at a time: the slices' PIXELS are
        # never concatenated (600 KB an image, fresh pages to fault in), only the small outputs.
        parts = [self._analyse(files[i : i + self.run_batch]) for i in range(0, len(files), self.run_batch)]
        outputs = parts[0] if len(parts) == 1 else {n: np.concatenate([p[n] for p in parts]) for n in self.output_names}
        return self.batching.responses(outputs, counts, self.output_names)

    def _analyse(self, files):
        """Every output for at most run_batch files: one DALI run, one onnxruntime run."""
        outputs = self.runner.run(files)  # an undecodable file is VALID false with zeros, as in the ensemble
        feeds = {name: outputs[name] for name in self.vision_inputs}
        outputs.update(zip(self.vision_outputs, self.session.run(self.vision_outputs, feeds)))
        return outputs
