"""The gpu profile's preprocessing: a DALI-backend model (`preprocess`, `model.dali`, nvJPEG decoding with
`device="mixed"`) followed by a small numpy python-backend model (`preprocess_features`).

Why two models: DALI computes PIXELS, ORIG_SIZE, THUMB and the Laplacian on the GPU, but not
  - QUALITY_FEATURES: the object box is found from the median border colour (preprocessing.foreground), and DALI has
    no median; the variance inside the box is then a CPU job on the Laplacian (~0.3 ms an image on one core);
  - VALID: DALI cannot flag one image; an undecodable image fails the whole DALI run.
So `preprocess` returns the Laplacian, zero-padded to BLUR_SIDE x BLUR_SIDE as int16 (exact: a 3x3 Laplacian of 8-bit
grey stays within +-8160) with its true size, and `preprocess_features` turns it into VALID and QUALITY_FEATURES with
the cpu runner's own code (generated into the model folder, numpy only). The analyze ensemble exposes the same tensors
in both profiles.

Serialisation: DALI (2.4 here) serialises a pipeline with mixed/GPU operators without a GPU or driver when the
pipeline is defined with `device_id=None` (with `device_id=0` it refuses: "CUDA is not available"). The DALI backend
creates the pipeline with the instance's own device id, batch size and thread count, so `make repo PROFILE=gpu` writes
`model.dali` on any machine. The file is read by the DALI inside the Triton image, which may be older (the DALI
backend moved to DALI 2 with Triton 26.04; the chart's default 24.10 has a DALI 1.x): the pipeline is defined for the
executor the DALI backend runs (exec_dynamic=False: no data back from the GPU to the CPU) without the newer
DataNode.shape operator (fn.shapes instead), and the DALI version that serialised it is recorded in config.pbtxt.
Serialised pipelines carry no promise of loading in an older DALI: when the Triton image refuses it (the model fails
to load and Triton exits), regenerate the repository with that image's nvidia-dali version installed.

Transparency: the cpu runner composites transparent PNG/WebP on white before decoding (Pillow). A pure DALI pipeline
cannot (measured with DALI 2.4's decoder and output_type=ANY_DATA: an LA PNG fails to decode, palette/RGB PNGs with a
tRNS colour come back without alpha, a grey JPEG crashed the process), and the NGC image has no Pillow, so in this
profile transparent images have to arrive flattened: by the gateway, before it calls Triton (the cpu runner's
flatten_transparency; it leaves opaque files untouched, and the cpu runner then finds nothing left to do). Until the
gateway does so, the gpu profile decodes a transparent image with its alpha dropped (hidden pixels, often black).
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import warnings
from pathlib import Path

from contract.tensors import (
    IMAGE_BYTES,
    IMAGE_LENGTH,
    ORIG_SIZE,
    PIXELS,
    QUALITY_FEATURES,
    TEXT_IMAGE,
    THUMB,
    VALID,
    TensorSpec,
)
from preprocessing.pipeline import BLUR_SIDE, SERVED_BLUR_COPY

FEATURES_MODEL = "preprocess_features"
LAPLACIAN = TensorSpec("LAPLACIAN", "int16", (BLUR_SIDE, BLUR_SIDE))  # zero-padded; LAPLACIAN_SIZE says how much
LAPLACIAN_SIZE = TensorSpec("LAPLACIAN_SIZE", "int32", (2,))  # height, width of the Laplacian inside LAPLACIAN
# The DALI backend maps config outputs to pipeline outputs by position: one tuple orders both.
DALI_INPUTS = (IMAGE_BYTES, IMAGE_LENGTH)
DALI_OUTPUTS = (PIXELS, ORIG_SIZE, THUMB, LAPLACIAN, LAPLACIAN_SIZE)
DALI_TEXT_OUTPUTS = (*DALI_OUTPUTS, TEXT_IMAGE)  # where the text_overlay check is served
FEATURES_INPUTS = (THUMB, LAPLACIAN, LAPLACIAN_SIZE)  # the order triton_python/features.py reads them in
FEATURES_OUTPUTS = (VALID, QUALITY_FEATURES)

TRITON_PYTHON = Path(__file__).resolve().parent / "triton_python"


def dali_type(dtype: str):
    from nvidia.dali import types

    return {"uint8": types.UINT8, "int16": types.INT16, "int32": types.INT32, "float32": types.FLOAT}[dtype]


@contextlib.contextmanager
def quiet_shapes_deprecation():
    """fn.shapes is deprecated in DALI 2 for DataNode.shape(), whose `_Shape` operator the older DALIs of Triton
    images do not know; fn.shapes serialises as `Shapes`, which every DALI version knows. DALI forces its deprecation
    warnings past the filters, so this one is dropped where it is shown."""
    shown = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if not (issubclass(category, DeprecationWarning) and "fn.shapes" in str(message)):
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def triton_pipeline(on_gpu: bool = True, max_batch: int = 64, threads: int = 2, text: bool = False):
    """The DALI-backend model's pipeline (not built). `on_gpu` (nvJPEG, "mixed") is what is served; False runs the
    same graph on the CPU (tests). `device_id=None` lets a GPU pipeline be defined and serialised without CUDA.
    `text`: also TEXT_IMAGE (DALI_TEXT_OUTPUTS), where the text_overlay check is served.

    DALI puts each operator's Python call stack into its errors (and into model.dali). The gateway tells an
    undecodable image (retried alone) from a server fault by the word "decode" in the error, so no line on the
    stack of an operator other than the decoder may contain it."""
    from nvidia.dali import fn, pipeline_def, types

    from preprocessing.pipeline import preprocess_graph

    outputs = DALI_TEXT_OUTPUTS if text else DALI_OUTPUTS

    # Declared output types and ranks: DALI checks them at run time and the DALI backend against config.pbtxt.
    # exec_dynamic=False: the executor the DALI backend runs; DALI then refuses any GPU -> CPU data flow right here.
    @pipeline_def(
        batch_size=max_batch,
        num_threads=threads,
        device_id=None,
        prefetch_queue_depth=1,
        exec_dynamic=False,
        output_dtype=[dali_type(t.dtype) for t in outputs],
        output_ndim=[len(t.dims) for t in outputs],
    )
    def preprocess():
        padded = fn.external_source(name=IMAGE_BYTES.name, dtype=dali_type(IMAGE_BYTES.dtype), ndim=1)
        length = fn.external_source(name=IMAGE_LENGTH.name, dtype=dali_type(IMAGE_LENGTH.dtype), ndim=1)
        text_side = TEXT_IMAGE.dims[0] if text else None
        pixels, orig_size, thumb, laplacian, *text_image = preprocess_graph(
            padded, length, "mixed" if on_gpu else "cpu", SERVED_BLUR_COPY, text_side
        )
        plane = laplacian[:, :, 0]  # grey: drop the channel axis
        with quiet_shapes_deprecation():
            size = fn.shapes(plane, dtype=types.INT32)  # on the GPU, beside the plane
        # Triton returns one dense tensor per output: pad every Laplacian to the largest possible (BLUR_SIDE square).
        padded_plane = fn.pad(fn.cast(plane, dtype=types.INT16), axes=(0, 1), shape=LAPLACIAN.dims, fill_value=0)
        nodes = {
            PIXELS.name: pixels,
            ORIG_SIZE.name: orig_size,
            THUMB.name: thumb,
            LAPLACIAN.name: padded_plane,
            LAPLACIAN_SIZE.name: size,
            **({TEXT_IMAGE.name: text_image[0]} if text_image else {}),
        }
        return tuple(nodes[t.name] for t in outputs)

    return preprocess()


def dali_version() -> str:
    import nvidia.dali

    return nvidia.dali.__version__


def serialize_pipeline(path: Path, max_batch: int, threads: int, text: bool = False) -> Path:
    """Write the served (mixed-decoder) pipeline to `path` (model.dali); works without a GPU."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(triton_pipeline(True, max_batch, threads, text).serialize())
    return path


MEASURES_HEADER = '''"""Generated by build_engines.dali_model from preprocessing/runner.py: the cpu runner's classical
measures (the object box, the quality features), for the numpy python-backend models (`preprocess_features` on the
gpu profile, the `text_overlay` scorer). numpy only. Do not edit: regenerate the model repository."""

from __future__ import annotations

import numpy as np

from imgsel_foreground import foreground_mask
'''


def write_measures_code(version_dir: Path) -> None:
    """imgsel_foreground.py (preprocessing/foreground.py copied) and imgsel_measures.py (the runner's object_bbox and
    quality_features extracted from their source: the runner itself imports Pillow, which the NGC image lacks)."""
    from preprocessing import foreground, runner

    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(inspect.getsourcefile(foreground), version_dir / "imgsel_foreground.py")
    parts = [
        MEASURES_HEADER,
        f"MIN_LINE_FRACTION = {runner.MIN_LINE_FRACTION!r}",
        inspect.getsource(runner.object_bbox),
        inspect.getsource(runner.quality_features),
    ]
    (version_dir / "imgsel_measures.py").write_text("\n\n\n".join(part.strip("\n") for part in parts) + "\n")


def write_features_code(version_dir: Path) -> None:
    """model.py plus the measures it calls (write_measures_code)."""
    write_measures_code(version_dir)
    shutil.copy(TRITON_PYTHON / "features.py", version_dir / "model.py")
