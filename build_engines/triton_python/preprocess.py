"""Triton python-backend model `preprocess`: DALI decode/resize/normalise + classical quality measures.

Inputs: IMAGE_BYTES uint8 [-1] (ragged; a request may carry N images zero-padded to its longest file) and
IMAGE_LENGTH int32 [1]. All requests of a dynamic batch are decoded in one DALI run.
"""

import json
import sys


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        sys.path.insert(0, params["IMGSEL_PROJECT_ROOT"])  # the stub runs Python isolated: PYTHONPATH is ignored
        from build_engines.triton_python import batching
        from contract.tensors import IMAGE_BYTES, IMAGE_LENGTH
        from preprocessing.runner import PreprocessRunner
        from runtime.idle_memory import IdleTrim
        from runtime.model_params import run_batch

        self.batching = batching
        self.input_names = IMAGE_BYTES.name, IMAGE_LENGTH.name
        self.runner = PreprocessRunner(
            max_batch=run_batch(config, params),  # DALI's batch: a larger dynamic batch runs in slices
            threads=int(params.get("DALI_THREADS", "2")),
            device=params.get("DALI_DEVICE", "cpu"),
            text=params.get("TEXT_IMAGE", "0") == "1",  # where the text_overlay check is served
        )
        self.output_names = list(self.runner.outputs)
        self.idle = IdleTrim().start()  # DALI's freed batch buffers go back to the OS in a pause

    def execute(self, requests):
        with self.idle.busy():
            return self._execute(requests)

    def _execute(self, requests):
        counts, files = self.batching.encoded_files(requests, *self.input_names)
        return self.batching.responses(self.runner.run(files), counts, self.output_names)
