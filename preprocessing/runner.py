"""Runs the DALI pipeline on a batch of encoded images and derives the classical quality measures and the hashes
duplicate detection compares (preprocessing.perceptual).

Used by the cpu profile's python-backend models (the one `analyze` model, or `preprocess` in the ensemble);
importable and testable without Triton.
A corrupt image fails only itself: a batch that DALI rejects is retried image by image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from contract.tensors import (
    DHASH_EDGE,
    HASH_OUTPUTS,
    HSV_HIST,
    IMAGE_BYTES,
    IMAGE_LENGTH,
    ORIG_SIZE,
    PHASH,
    PIXELS,
    PREPROCESS_OUTPUTS,
    QUALITY_FEATURE_NAMES,
    QUALITY_FEATURES,
    TEXT_IMAGE,
    THUMB,
    VALID,
)
from preprocessing.foreground import foreground_mask
from preprocessing.perceptual import hash_features
from preprocessing.pipeline import SERVED_BLUR_COPY, BlurCopy, build_pipeline

# Output tensor name -> (dtype, per-image shape), from the contract (the Triton configs are generated from it too):
# every profile's outputs, and the hashes, which this python model can make (the gpu profile's numpy step cannot).
OUTPUTS: dict[str, tuple[str, tuple[int, ...]]] = {
    t.name: (t.dtype, t.dims) for t in (*PREPROCESS_OUTPUTS, *HASH_OUTPUTS)
}
FEATURE_NAMES = QUALITY_FEATURE_NAMES  # QUALITY_FEATURES columns

# Rows/columns with fewer object pixels than this fraction are noise (JPEG ringing, dust), not object.
MIN_LINE_FRACTION = 0.02


def object_bbox(thumb: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right; exclusive ends) of what differs from the border colour (`mask`, the
    thumbnail's foreground_mask, when the caller has it already)."""
    if mask is None:
        mask = foreground_mask(thumb)
    rows = np.flatnonzero(mask.mean(axis=1) >= MIN_LINE_FRACTION)
    cols = np.flatnonzero(mask.mean(axis=0) >= MIN_LINE_FRACTION)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def quality_features(thumb: np.ndarray, laplacian: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Classical measures: variance of the Laplacian inside the object's box, and the box's area fraction.

    The box is found on the thumbnail (area fractions survive the aspect squash) and mapped onto the Laplacian
    image; measuring only inside it keeps a white studio margin from making a sharp product look blurry.
    """
    top, bottom, left, right = object_bbox(thumb, mask)
    side = thumb.shape[0]
    area_fraction = (bottom - top) * (right - left) / float(side * side)
    lap = laplacian.reshape(laplacian.shape[0], laplacian.shape[1])
    if area_fraction > 0:
        h, w = lap.shape
        region = lap[
            top * h // side : max(bottom * h // side, top * h // side + 1),
            left * w // side : max(right * w // side, left * w // side + 1),
        ]
    else:
        region = lap
    return np.array([float(region.var()), area_fraction], dtype=np.float32)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def flatten_transparency(data: np.ndarray) -> np.ndarray:
    """A PNG/WebP with an alpha channel or transparent colour, composited on white and re-encoded as BMP.

    DALI decodes to RGB by dropping alpha, which turns a transparent background black (whatever colour the hidden
    pixels hold); product pages show white, and placeholder PNGs are mostly transparent. Opaque files and every other
    format pass through untouched (only the header is read), so the common path keeps its single decode.
    """
    head = data[:16].tobytes()
    if not (head.startswith(PNG_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        return data
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
                return data
            rgba = image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError):
        return data  # let the decoder report it as undecodable
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    buffer = io.BytesIO()
    Image.alpha_composite(white, rgba).convert("RGB").save(buffer, "BMP")
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


class PreprocessRunner:
    """`device="cpu"` for the embedded profile: DALI decodes and makes the blur copy, preprocessing.resampling the
    224 px and 128 px copies (PyTorch, `threads` threads); `"gpu"` runs the whole graph in DALI with nvJPEG decoding
    and copies the results back to the host."""

    def __init__(
        self,
        max_batch: int = 64,
        threads: int = 2,
        device: str = "cpu",
        blur_copy: BlurCopy = SERVED_BLUR_COPY,
        text: bool = False,
    ):
        self.max_batch = max_batch
        self.threads = threads
        self.device = device
        self.blur_copy = blur_copy  # see build_pipeline
        self.text = text  # also TEXT_IMAGE, for the text_overlay check
        self.outputs = {**OUTPUTS, **({TEXT_IMAGE.name: (TEXT_IMAGE.dtype, TEXT_IMAGE.dims)} if text else {})}
        if device == "cpu":  # imported here: object_bbox's and quality_features' users need no torch
            import torch

            from preprocessing.resampling import backbone_copies

            torch.set_num_threads(threads)  # the host copies' share of the runner's thread budget
            self._backbone_copies = backbone_copies
        self._pipe = self._new_pipeline()

    def _new_pipeline(self):
        pipe = build_pipeline(
            self.device,
            batch_size=self.max_batch,
            num_threads=self.threads,
            blur_copy=self.blur_copy,
            text_side=TEXT_IMAGE.dims[0] if self.text else None,
        )
        pipe.build()
        return pipe

    def _run_dali(self, files: list[np.ndarray]):
        """Per file, its outputs as views of DALI's buffers (no copy: the caller copies them into its own arrays), valid
        until the pipeline runs again."""
        self._pipe.feed_input(IMAGE_BYTES.name, files)
        self._pipe.feed_input(IMAGE_LENGTH.name, [np.array([f.size], np.int32) for f in files])
        outputs = self._pipe.run()
        if self.device == "gpu":
            outputs = [o.as_cpu() for o in outputs]
        return [tuple(np.asarray(output[i]) for output in outputs) for i in range(len(files))]

    def _run_isolating_failures(self, files: list[np.ndarray]):
        """Whole batch first; when DALI rejects it, one image at a time so only the bad ones fail."""
        try:
            return self._run_dali(files)
        except RuntimeError:
            self._pipe = self._new_pipeline()  # a failed run may leave the pipeline unusable
        results = []
        for f in files:
            try:  # copied: the next image's run reuses the buffers these views point into
                results.append(tuple(np.array(output) for output in self._run_dali([f])[0]))
            except RuntimeError:
                self._pipe = self._new_pipeline()
                results.append(None)
        return results

    def run(self, files: list[np.ndarray]) -> dict[str, np.ndarray]:
        """`files`: encoded images as 1-D uint8 arrays (no padding), any number of them: more than `max_batch` run
        as consecutive DALI batches. Returns self.outputs, batch-first."""
        if len(files) <= self.max_batch:
            return self._run_batch(files)
        parts = [self._run_batch(files[i : i + self.max_batch]) for i in range(0, len(files), self.max_batch)]
        return {name: np.concatenate([part[name] for part in parts]) for name in self.outputs}

    def _run_batch(self, files: list[np.ndarray]) -> dict[str, np.ndarray]:
        n = len(files)
        out = {name: np.zeros((n, *shape), dtype=dtype) for name, (dtype, shape) in self.outputs.items()}
        nonempty = [i for i, f in enumerate(files) if f.size > 0]
        decodable = [flatten_transparency(files[i]) for i in nonempty]
        results = self._run_isolating_failures(decodable) if nonempty else []
        for i, result in zip(nonempty, results):
            if result is None:
                continue
            if self.device == "cpu":
                rgb, orig_size, laplacian, *text = result
                self._backbone_copies(rgb, out[PIXELS.name][i], out[THUMB.name][i])
            else:
                pixels, orig_size, thumb, laplacian, *text = result
                out[PIXELS.name][i], out[THUMB.name][i] = pixels, thumb
            if text:
                out[TEXT_IMAGE.name][i] = text[0]
            out[VALID.name][i] = True
            out[ORIG_SIZE.name][i] = orig_size
            thumb = out[THUMB.name][i]
            mask = foreground_mask(thumb)  # one mask for the object box and the hashes
            out[QUALITY_FEATURES.name][i] = quality_features(thumb, laplacian, mask)
            out[PHASH.name][i], out[DHASH_EDGE.name][i], out[HSV_HIST.name][i] = hash_features(thumb, mask)
        return out
