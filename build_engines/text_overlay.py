"""The `text_overlay` compliance check: overlaid marketing text, badges, price tags and watermarks, told apart from
text printed on the product (packaging, logos, book covers).

Three Triton models in the analyze ensemble, reading TEXT_IMAGE (the preprocessing stage's 512 px copy, made only
where this check is served) and THUMB:

    text_detect     PP-OCRv4 detection, wrapped: TEXT_IMAGE uint8 [512, 512, 3] -> TEXT_PROB float32 [256, 256]
                    (PP-OCR's normalisation inside the graph; the probability map 2x2-averaged, a quarter of the bytes)
    text_recognize  PP-OCRv4 recognition, wrapped: TEXT_LINE uint8 [48, 320, 3] -> TEXT_CODES int32 [40] and
                    TEXT_CODE_PROBS float32 [40] (the best class per CTC step and its probability, not the 6625-way
                    softmax); not an ensemble step: the scorer calls it (business logic scripting) with its line crops
    text_overlay    python-backend scorer (build_engines/triton_python/text_overlay.py, numpy only): DB boxes from
                    TEXT_PROB, the largest lines cut and sent to text_recognize in one call, CTC decoding, features
                    (where the text sits against the object's box and silhouette from THUMB, marketing words, prices,
                    coloured backing, repetition), the logistic head of build_engines/heads/text_overlay.json
                    -> COMPLIANCE_text_overlay [1], 0.5 at the head's threshold

The detector and the recogniser are ONNX models like `vision` and `nsfw`: onnxruntime in the python backend on the cpu
profile, TensorRT plans of the same files on the gpu profile. The ONNX files come from the PyPI wheel
`rapidocr-onnxruntime` 1.4.4 (installed with --no-deps: only its model files are used, none of its Python); the
recogniser's character list is the `character` entry of its ONNX metadata. The post-processing (DB boxes, CTC) is the
project's own, in build_engines/ocr.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from build_engines.onnx_graph import rewire_and_save
from contract.tensors import TEXT_IMAGE, TensorSpec, compliance_output

TEXT_OVERLAY = "text_overlay"  # the check: model `text_overlay`, output COMPLIANCE_text_overlay, score `text_overlay`
TEXT_OVERLAY_OUTPUT = compliance_output(TEXT_OVERLAY)
TEXT_DETECT = "text_detect"
TEXT_RECOGNIZE = "text_recognize"
PROB_POOL = 2  # TEXT_PROB is the detector's map averaged over PROB_POOL x PROB_POOL cells
TEXT_PROB = TensorSpec("TEXT_PROB", "float32", (TEXT_IMAGE.dims[0] // PROB_POOL, TEXT_IMAGE.dims[1] // PROB_POOL))
LINE_STEPS = 40  # PP-OCRv4 rec: one CTC step per 8 px of its 320 px input
TEXT_LINE = TensorSpec("TEXT_LINE", "uint8", (48, 320, 3))
TEXT_CODES = TensorSpec("TEXT_CODES", "int32", (LINE_STEPS,))
TEXT_CODE_PROBS = TensorSpec("TEXT_CODE_PROBS", "float32", (LINE_STEPS,))
DETECT_FILE = "ch_PP-OCRv4_det_infer.onnx"
RECOGNIZE_FILE = "ch_PP-OCRv4_rec_infer.onnx"
CHARSET_FILE = "charset.txt"
HEAD_FILE = "text_overlay.json"  # in build_engines/heads/, written by training.text_overlay


def rapidocr_models() -> Path:
    """The wheel's model folder (pinned rapidocr-onnxruntime==1.4.4; only the files are used)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "rapidocr-onnxruntime is not installed: pip install --no-deps rapidocr-onnxruntime==1.4.4"
        )
    return Path(spec.origin).parent / "models"


def _normalise_nodes(source: str, target: str, layout_perm: list[int]) -> tuple[list, dict]:
    """uint8 NHWC -> PP-OCR's float input: x / 127.5 - 1 (its (x / 255 - 0.5) / 0.5), NCHW."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", [source], ["adapter/float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["adapter/float", "adapter/scale"], ["adapter/scaled"]),
        helper.make_node("Sub", ["adapter/scaled", "adapter/one"], ["adapter/centred"]),
        helper.make_node("Transpose", ["adapter/centred"], [target], perm=layout_perm),
    ]
    return nodes, {"adapter/scale": np.float32(1 / 127.5), "adapter/one": np.float32(1.0)}


def _wrap(source: Path, out: Path, input_spec: TensorSpec, outputs: list[TensorSpec], tail) -> Path:
    """The ONNX file at `source` read from `input_spec` (uint8 NHWC, normalised inside) with `tail(original_output)`
    -> (nodes, constants) computing `outputs`; fixed per-image shapes so TensorRT builds one profile over the batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    (original_input,) = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    (original_output,) = [o.name for o in graph.output]
    head, constants = _normalise_nodes(input_spec.name, original_input, [0, 3, 1, 2])
    tail_nodes, tail_constants = tail(original_output)
    constants.update(tail_constants)
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in constants.items())
    del model.metadata_props[:]  # the character list goes to charset.txt, not into every served copy
    onnx_types = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}
    rewire_and_save(
        model,
        head + list(graph.node) + tail_nodes,
        [helper.make_tensor_value_info(input_spec.name, TensorProto.UINT8, ["N", *input_spec.dims])],
        [helper.make_tensor_value_info(t.name, onnx_types[t.dtype], ["N", *t.dims]) for t in outputs],
        out,
    )
    return out


def write_detect_onnx(out: Path, models: Path | None = None) -> Path:
    """text_detect: TEXT_IMAGE -> TEXT_PROB (the detector's [N, 1, 512, 512] map, 2x2-averaged, channel dropped)."""
    from onnx import helper

    def tail(output: str):
        nodes = [
            helper.make_node(
                "AveragePool", [output], ["tail/pooled"], kernel_shape=[PROB_POOL, PROB_POOL], strides=[PROB_POOL] * 2
            ),
            helper.make_node("Squeeze", ["tail/pooled"], [TEXT_PROB.name], axes=[1]),  # opset 12: axes attribute
        ]
        return nodes, {}

    return _wrap((models or rapidocr_models()) / DETECT_FILE, out, TEXT_IMAGE, [TEXT_PROB], tail)


def write_recognize_onnx(out: Path, models: Path | None = None) -> Path:
    """text_recognize: TEXT_LINE -> TEXT_CODES (argmax per CTC step) and TEXT_CODE_PROBS (its probability)."""
    from onnx import TensorProto, helper

    def tail(output: str):
        nodes = [
            helper.make_node("ArgMax", [output], ["tail/codes64"], axis=2, keepdims=0),
            helper.make_node("Cast", ["tail/codes64"], [TEXT_CODES.name], to=TensorProto.INT32),
            helper.make_node("ReduceMax", [output], [TEXT_CODE_PROBS.name], axes=[2], keepdims=0),
        ]
        return nodes, {}

    return _wrap((models or rapidocr_models()) / RECOGNIZE_FILE, out, TEXT_LINE, [TEXT_CODES, TEXT_CODE_PROBS], tail)


def write_charset(out: Path, models: Path | None = None) -> Path:
    """The recogniser's characters, one a line (class k >= 1 is line k - 1; build_engines.ocr adds the space)."""
    import onnx

    model = onnx.load(str((models or rapidocr_models()) / RECOGNIZE_FILE), load_external_data=False)
    (characters,) = [p.value for p in model.metadata_props if p.key == "character"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(characters.rstrip("\n"), encoding="utf-8")
    return out


def write_scorer_code(version_dir: Path, head: Path) -> None:
    """The text_overlay python model's folder: model.py, build_engines/ocr.py copied beside it and the cpu runner's
    measures (build_engines.dali_model.write_measures_code: the foreground mask and the object box), numpy only (the
    gpu profile's Triton image has no project checkout), the head and the charset."""
    import inspect

    from build_engines import ocr
    from build_engines.dali_model import write_measures_code

    triton_python = Path(__file__).resolve().parent / "triton_python"
    write_measures_code(version_dir)
    shutil.copy(triton_python / "text_overlay.py", version_dir / "model.py")
    shutil.copy(inspect.getsourcefile(ocr), version_dir / "imgsel_ocr.py")
    shutil.copy(head, version_dir / HEAD_FILE)
    write_charset(version_dir / CHARSET_FILE)


class LocalTextOverlay:
    """The three models in this process (onnxruntime), for training, evaluation and tests: the same wrapped ONNX
    files, the same build_engines.ocr code and the same inputs (the preprocessing runner's TEXT_IMAGE, ORIG_SIZE and
    THUMB) as served."""

    def __init__(self, scratch: Path, threads: int = 1):
        import onnxruntime as ort

        from build_engines import ocr

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.detect = ort.InferenceSession(
            str(write_detect_onnx(scratch / "detect.onnx")), options, providers=providers
        )
        self.recognise_session = ort.InferenceSession(
            str(write_recognize_onnx(scratch / "recognize.onnx")), options, providers=providers
        )
        self.charset = ocr.read_charset(write_charset(scratch / CHARSET_FILE))

    def recognise(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return tuple(self.recognise_session.run(None, {TEXT_LINE.name: crops}))

    def analyse(self, text_images: np.ndarray, orig_sizes: np.ndarray, thumbs: np.ndarray):
        """Per image: (features, recognised lines)."""
        from build_engines import ocr
        from preprocessing.foreground import foreground_mask
        from preprocessing.runner import object_bbox

        (probs,) = self.detect.run(None, {TEXT_IMAGE.name: text_images})
        masks = [foreground_mask(thumb) for thumb in thumbs]
        boxes = [object_bbox(thumb, mask) for thumb, mask in zip(thumbs, masks)]
        return ocr.analyse(text_images, probs, orig_sizes, masks, boxes, self.recognise, self.charset)
