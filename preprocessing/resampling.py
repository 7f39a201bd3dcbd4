"""The backbone's and the hashes' copies of a decoded picture, resampled on the host for the cpu profile: PIXELS (the
longer side antialiased to 224 px, centred on white, ImageNet-normalised, CHW float32) and THUMB (the 224 px copy
antialiased to 128 x 128, aspect squashed, HWC uint8), what preprocessing.pipeline.backbone_copies_graph makes in
DALI on the gpu profile.

Why not DALI here: its CPU resize costs ~2.4 ms an 800 px picture on the development VM, about the same per input
pixel whatever the filter (triangular, linear, two steps); PyTorch's uint8 antialiased bilinear kernel (AVX2, on a
channels-last view of the decoded HWC picture, so nothing is copied first) is the same triangular filter in fixed
point and takes ~0.53 ms (BENCHMARKS.md, issue #13). Its outputs differ from DALI's float filter by rounding: PIXELS
by 0.05 grey levels on average (about 5% of values by a level or more), the int8 vision model's embedding by cosine
>= 0.997 on the benchmark's photos, inside that model's own quantisation noise (MODELS.md "vision: int8").
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.nn import functional

from contract.tensors import BACKBONE_SIDE, THUMB_SIDE
from preprocessing.pipeline import MEAN, PAD_WHITE, STD

_MEAN = np.array(MEAN, np.float32).reshape(3, 1, 1)
_STD = np.array(STD, np.float32).reshape(3, 1, 1)
_WHITE = ((PAD_WHITE - _MEAN) / _STD).astype(np.float32)  # the pad, normalised

# DALI's output buffers are read-only views; the kernel only reads them.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def longer_side_size(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) with the longer side `side` and the aspect kept (each at least 1 pixel), as DALI's
    `resize_longer` rounds."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def centring_offset(size: int, side: int = BACKBONE_SIDE) -> int:
    """Where a copy of `size` pixels starts on a `side` canvas, as DALI's centred crop pads it (the odd pixel of the
    margin goes before the copy)."""
    return (side - size + 1) // 2


def backbone_copies(rgb: np.ndarray, pixels: np.ndarray, thumb: np.ndarray) -> None:
    """Write PIXELS (3, 224, 224) float32 into `pixels` and THUMB (128, 128, 3) uint8 into `thumb`, from a decoded
    (h, w, 3) uint8 picture. One image at a time: pictures of a batch differ in size, and the kernel is as fast on
    one as on a stack (a stack would first copy every full-size picture)."""
    height, width = rgb.shape[:2]
    picture = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # NCHW view of HWC memory: the kernel's fast layout
    small_height, small_width = longer_side_size(height, width, BACKBONE_SIDE)
    small = functional.interpolate(picture, size=(small_height, small_width), mode="bilinear", antialias=True)
    top, left = centring_offset(small_height), centring_offset(small_width)
    pixels[...] = _WHITE
    inside = pixels[:, top : top + small_height, left : left + small_width]
    np.subtract(small[0].numpy(), _MEAN, out=inside, dtype=np.float32)
    inside /= _STD
    squashed = functional.interpolate(small, size=(THUMB_SIDE, THUMB_SIDE), mode="bilinear", antialias=True)
    thumb[...] = squashed[0].permute(1, 2, 0).numpy()
