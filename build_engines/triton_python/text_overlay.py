"""Triton python-backend model `text_overlay` (both profiles): the text_overlay check's scorer.

Inputs TEXT_IMAGE (the 512 px copy), TEXT_PROB (text_detect's map), ORIG_SIZE, THUMB; output COMPLIANCE_text_overlay
[1], 0.5 at the trained head's threshold. Every request of a dynamic batch is scored together: DB boxes per picture,
the largest lines of every picture sent to the `text_recognize` model in calls of at most its max_batch_size
(business logic scripting), CTC decoding, features, the logistic head. numpy only, nothing of the project outside this
folder: imgsel_ocr.py (build_engines/ocr.py), imgsel_foreground.py and imgsel_measures.py (the cpu runner's foreground
mask and object box), the head (text_overlay.json) and the recogniser's characters (charset.txt) are written beside
this file by the generator.
"""

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import imgsel_ocr  # noqa: E402  (copied beside this file)
from imgsel_foreground import foreground_mask  # noqa: E402
from imgsel_measures import object_bbox  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        # The generator writes the inputs in this order: TEXT_IMAGE, TEXT_PROB, ORIG_SIZE, THUMB.
        self.image, self.prob, self.size, self.thumb = (tensor["name"] for tensor in config["input"])
        (self.output,) = (tensor["name"] for tensor in config["output"])
        self.recognizer = params["RECOGNIZER"]
        self.line_input, self.codes_output, self.probs_output = params["RECOGNIZER_TENSORS"].split(",")
        self.recognizer_batch = int(params["RECOGNIZER_MAX_BATCH"])
        self.head = imgsel_ocr.load_head(HERE / params["HEAD"])
        self.charset = imgsel_ocr.read_charset(HERE / params["CHARSET"])

    def recognise(self, crops):
        codes, probs = [], []
        for start in range(0, len(crops), self.recognizer_batch):
            request = pb_utils.InferenceRequest(
                model_name=self.recognizer,
                requested_output_names=[self.codes_output, self.probs_output],
                inputs=[
                    pb_utils.Tensor(self.line_input, np.ascontiguousarray(crops[start : start + self.recognizer_batch]))
                ],
            )
            response = request.exec()
            if response.has_error():
                raise pb_utils.TritonModelException(f"{self.recognizer}: {response.error().message()}")
            codes.append(pb_utils.get_output_tensor_by_name(response, self.codes_output).as_numpy())
            probs.append(pb_utils.get_output_tensor_by_name(response, self.probs_output).as_numpy())
        return np.concatenate(codes), np.concatenate(probs)

    def execute(self, requests):
        counts, images, probs, sizes, thumbs = [], [], [], [], []
        for request in requests:
            image = pb_utils.get_input_tensor_by_name(request, self.image).as_numpy()
            counts.append(len(image))
            images.append(image)
            probs.append(pb_utils.get_input_tensor_by_name(request, self.prob).as_numpy())
            sizes.append(pb_utils.get_input_tensor_by_name(request, self.size).as_numpy())
            thumbs.append(pb_utils.get_input_tensor_by_name(request, self.thumb).as_numpy())
        thumbs = np.concatenate(thumbs)
        masks = [foreground_mask(thumb) for thumb in thumbs]
        analysed = imgsel_ocr.analyse(
            np.concatenate(images),
            np.concatenate(probs),
            np.concatenate(sizes),
            masks,
            [object_bbox(thumb, mask) for thumb, mask in zip(thumbs, masks)],
            self.recognise,
            self.charset,
        )
        scores = imgsel_ocr.served_score(np.array([values for values, _ in analysed]), self.head).reshape(-1, 1)
        responses, start = [], 0
        for count in counts:
            tensor = pb_utils.Tensor(self.output, scores[start : start + count].astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += count
        return responses
