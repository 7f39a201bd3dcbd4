"""The DALI preprocessing pipeline: decode each image once, then everything the models and the gateway need.

One graph (preprocess_graph) computes every output in DALI: the gpu profile serves it with nvJPEG (`mixed`) decoding
as a DALI-backend model (build_engines.dali_model, which pads the Laplacian for Triton). On the CPU (build_pipeline,
run inside the cpu profile's python-backend model by preprocessing.runner) the same graph stops after the decode and
the blur copy and hands the decoded picture over: the 224 px and 128 px copies are resampled on the host by
preprocessing.resampling with the same antialiased triangular filter, in about a quarter of DALI's CPU time.

Inputs (external sources, names are the Triton tensor names):
  IMAGE_BYTES  uint8 [L]  encoded file, possibly zero-padded to the longest file of its request
  IMAGE_LENGTH int32 [1]  the file's true length; the padding is sliced off before decoding
Outputs (per image):
  PIXELS        float32 [3, 224, 224]  backbone input: longer side resized to 224, padded with white, normalised
  ORIG_SIZE     int32   [2]            height, width of the encoded image (read from its header)
  THUMB         uint8   [128, 128, 3]  aspect-squashed RGB thumbnail for the gateway's hashes (imagehash squashes too)
  LAPLACIAN     float32 [h, w, 1]      Laplacian of the grey image, longer side <= BLUR_SIDE, for the blur measure
  TEXT_IMAGE    uint8   [S, S, 3]      only with `text_side` S (where the text_overlay check is served): the RGB
                                       picture, longer side resized to S, centred on white
build_pipeline's cpu graph outputs the decoded RGB picture (uint8 [H, W, 3]) in place of PIXELS and THUMB.
"""

from __future__ import annotations

from typing import NamedTuple

from contract.tensors import BACKBONE_SIDE, IMAGE_BYTES, IMAGE_LENGTH, THUMB_SIDE

# Blur must be judged where blur is visible: at 224 px a slightly soft 2000 px photo looks sharp.
BLUR_SIDE = 512


class BlurCopy(NamedTuple):
    """The grey working copy the blur measure sees: longer side <= `side`, resampled by `resampling`:
    "antialiased" (a triangular filter as wide as the scale factor), "linear" (each output pixel interpolates its 2x2
    nearest input pixels) or "nearest" (each output pixel is one input pixel: a fraction of the CPU time)."""

    side: int = BLUR_SIDE
    resampling: str = "antialiased"

    @property
    def label(self) -> str:
        """How reports name the copy, e.g. "512 px, nearest"."""
        return f"{self.side} px, {self.resampling}"


# Nearest-neighbour: 1.8 CPU ms an image less than the antialiased copy, and the Laplacian variance alone separates
# blur better on it (held-out ROC-AUC 0.990 vs 0.981; the antialiasing filter adds a blur floor to every image):
# `python -m evaluation.blur_copy`, BENCHMARKS.md.
SERVED_BLUR_COPY = BlurCopy(BLUR_SIDE, "nearest")
# Backbone normalisation (ImageNet mean/std, as the pretrained EfficientNet-Lite0 weights expect).
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
PAD_WHITE = 255.0
# fn.laplacian(window_size=3) as one 3x3 convolution: its second derivatives are smoothed with [1, 2, 1], so the kernel
# is [[1,-2,1],[2,-4,2],[1,-2,1]] plus its transpose (OpenCV's ksize=3 Laplacian). Same output bit for bit, same
# border (reflect 101), at a tenth of the CPU time (fn.laplacian runs separable passes in float; 2.5 -> 0.2 ms an
# image at 512 px; tests/preprocessing checks the equality).
LAPLACIAN_KERNEL = ((2.0, 0.0, 2.0), (0.0, -8.0, 0.0), (2.0, 0.0, 2.0))

# Bump when the graph makes different outputs of the same file: caches keyed by preprocessing_fingerprint() then
# analyse every image again instead of serving stale features. 2: the nearest-neighbour blur copy (issue #13). 3: on
# the CPU, the 224 px and 128 px copies resampled by PyTorch (preprocessing.resampling; issue #13).
PIPELINE_VERSION = 3


def preprocessing_fingerprint() -> str:
    """Short id of what the served graph makes of a file: the analysis caches key their rows by it beside the
    backbone's fingerprint (training.embedding_cache.analysis_fingerprint)."""
    import hashlib

    decided_by = (PIPELINE_VERSION, SERVED_BLUR_COPY, BACKBONE_SIDE, THUMB_SIDE, MEAN, STD, PAD_WHITE, LAPLACIAN_KERNEL)
    return hashlib.sha256(repr(decided_by).encode()).hexdigest()[:8]


def preprocess_graph(
    padded, length, image_device: str = "cpu", blur_copy: BlurCopy = SERVED_BLUR_COPY, text_side: int | None = None
):
    """The operators from the padded encoded files to (PIXELS, ORIG_SIZE, THUMB, LAPLACIAN), plus TEXT_IMAGE when
    `text_side` is given, called inside a pipeline definition. `image_device`: "cpu", or "mixed" (nvJPEG; every
    later image op then runs on the GPU). The gpu profile's DALI-backend model (build_engines.dali_model)."""
    rgb, orig_size = picture_graph(padded, length, image_device)
    pixels, thumb = backbone_copies_graph(rgb)
    laplacian = laplacian_graph(rgb, orig_size, image_device, blur_copy)
    if text_side:  # only where the text_overlay check is served: the default cpu profile pays nothing
        return pixels, orig_size, thumb, laplacian, text_image(rgb, text_side)
    return pixels, orig_size, thumb, laplacian


def picture_graph(padded, length, image_device: str):
    """(the decoded RGB picture, ORIG_SIZE) of the padded encoded files. (No name in the graph's code says "decode":
    DALI's errors quote that code, and the gateway reads the word as the image's fault: is_decode_error.)"""
    from nvidia.dali import fn, types

    if image_device not in ("cpu", "mixed"):
        raise ValueError(f"image_device must be 'cpu' or 'mixed', got {image_device!r}")
    encoded = fn.slice(padded, fn.constant(idata=[0], dtype=types.INT32), length, axes=[0])
    orig_size = fn.slice(fn.peek_image_shape(encoded, dtype=types.INT32), 0, 2, axes=[0])
    return fn.decoders.image(encoded, device=image_device, output_type=types.RGB), orig_size


def backbone_copies_graph(rgb):
    """(PIXELS, THUMB) in DALI; preprocessing.resampling.backbone_copies makes the same on the host."""
    from nvidia.dali import fn, types

    # Each output is resampled once from the decoded image or from the 224 px copy: DALI's antialiased resize costs
    # about the same per input pixel whatever the output size, so a full-resolution intermediate copy that
    # everything derives from (an earlier graph) cost more than it saved (loadtest.preprocess_speed).
    # subpixel_scale=False: each axis scaled by its rounded size, as PyTorch's kernel on the cpu profile does (with the
    # default, DALI keeps the exact factor on the shorter side and shifts its samples by up to a pixel and a half).
    small = fn.resize(rgb, resize_longer=BACKBONE_SIDE, antialias=True, subpixel_scale=False)
    pixels = fn.crop_mirror_normalize(
        small,
        crop=(BACKBONE_SIDE, BACKBONE_SIDE),
        crop_pos_x=0.5,
        crop_pos_y=0.5,
        out_of_bounds_policy="pad",
        fill_values=[(PAD_WHITE - m) / s for m, s in zip(MEAN, STD)],
        mean=list(MEAN),
        std=list(STD),
        dtype=types.FLOAT,
        output_layout="CHW",
    )
    return pixels, fn.resize(small, size=(THUMB_SIDE, THUMB_SIDE), antialias=True)


def laplacian_graph(rgb, orig_size, image_device: str, blur_copy: BlurCopy):
    """The Laplacian of the grey working copy the blur measure reads."""
    from nvidia.dali import fn, types
    from nvidia.dali import math as dmath

    # Blur is measured on grey at <= blur_copy.side: one channel is a third of the resampling work (picking pixels
    # from the RGB copy before the conversion costs more: 3.1 vs 2.9 ms an image with the decode). Downscale only: an
    # upscaled small image would look blurry for the wrong reason.
    working_side = dmath.min(fn.reductions.max(fn.cast(orig_size, dtype=types.FLOAT)), float(blur_copy.side))
    grey = fn.color_space_conversion(rgb, image_type=types.RGB, output_type=types.GRAY)
    grey = fn.resize(grey, resize_longer=working_side, **resampling(blur_copy))
    if image_device == "cpu":
        kernel = fn.constant(fdata=[v for row in LAPLACIAN_KERNEL for v in row], shape=(3, 3), dtype=types.FLOAT)
        return fn.filter(grey, kernel, dtype=types.FLOAT)
    # on the GPU fn.laplacian is cheap, and where the filter's kernel may live there is unverified here
    return fn.laplacian(grey, window_size=3, dtype=types.FLOAT)


def resampling(copy: BlurCopy) -> dict:
    """fn.resize's arguments for the copy's resampling."""
    from nvidia.dali import types

    choices = {
        "antialiased": {"antialias": True},
        "linear": {"antialias": False},
        "nearest": {"antialias": False, "interp_type": types.INTERP_NN},
    }
    if copy.resampling not in choices:
        raise ValueError(f"resampling must be one of {sorted(choices)}, got {copy.resampling!r}")
    return choices[copy.resampling]


def text_image(rgb, side: int):
    """The text detector's copy: longer side resized to `side` (up or down), centred on a white `side` square."""
    from nvidia.dali import fn

    resized = fn.resize(rgb, resize_longer=side, antialias=True)
    return fn.crop(
        resized, crop=(side, side), crop_pos_x=0.5, crop_pos_y=0.5, out_of_bounds_policy="pad", fill_values=PAD_WHITE
    )


def build_pipeline(
    device: str = "cpu",
    batch_size: int = 64,
    num_threads: int = 2,
    device_id: int | None = None,
    blur_copy: BlurCopy = SERVED_BLUR_COPY,
    text_side: int | None = None,
):
    """Build (not yet `.build()`) the pipeline. `device` is "cpu" (outputs: the decoded RGB picture, ORIG_SIZE,
    LAPLACIAN[, TEXT_IMAGE]; preprocessing.resampling makes PIXELS and THUMB from the picture) or "gpu"
    (preprocess_graph's outputs, nvJPEG decoding). `blur_copy`: the working copy the blur measure sees (served:
    SERVED_BLUR_COPY; other values only for studies of that choice). `text_side`: also output TEXT_IMAGE of that
    side (the text_overlay check's copy)."""
    from nvidia.dali import fn, pipeline_def, types

    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu" and device_id is None:
        device_id = 0

    # prefetch_queue_depth=1: request/response use (feed one batch, run once); deeper queues wait for a next batch.
    @pipeline_def(
        batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=1, exec_dynamic=True
    )
    def preprocess():
        padded = fn.external_source(name=IMAGE_BYTES.name, dtype=types.UINT8, ndim=1)
        length = fn.external_source(name=IMAGE_LENGTH.name, dtype=types.INT32, ndim=1)
        if device == "gpu":
            return preprocess_graph(padded, length, "mixed", blur_copy, text_side)
        rgb, orig_size = picture_graph(padded, length, "cpu")
        laplacian = laplacian_graph(rgb, orig_size, "cpu", blur_copy)
        return (rgb, orig_size, laplacian) + ((text_image(rgb, text_side),) if text_side else ())

    return preprocess()
