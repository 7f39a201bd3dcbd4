"""Synthetic training data for the learned quality heads: label rules, seeds and degradations of real product photos
(blur, motion blur, crop-and-resize, flat-colour illustrations, objects shrunk onto white or pasted onto scenes). The
rendered "no image" placeholders are in training.placeholder_synthesis.

Every generator is a pure function of its inputs and a `numpy.random.Generator`; `rng_for(*keys)` derives that
generator from a string key, so one sample's pixels depend only on (source image, seed, key): the same call gives
the same image on every run and machine (PIL and the bundled fonts being the same).

Labels (1 = bad, 0 = acceptable, None = ambiguous band, left out of training and of the metrics):
  blur          Gaussian sigma (or the standard deviation of a motion-blur line, length / sqrt(12)) measured at the
                working resolution the blur feature sees (longer side <= 512 px, preprocessing.pipeline.BLUR_SIDE):
                >= 1.0 px is blurry (0.2 % of a 512 px side: on a 1300 px photo sigma >= 2.6 px), <= 0.4 px is
                mildly soft but acceptable, in between is not labelled.
  small_object  object bounding-box area / frame area: < 0.08 is lost in the frame, >= 0.12 is fine.
  placeholder   1 for rendered and real placeholders, 0 for every photo-derived image.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from preprocessing.foreground import BACKGROUND_TOLERANCE, foreground_mask
from preprocessing.pipeline import BLUR_SIDE
from preprocessing.runner import object_bbox

BLUR_POSITIVE_SIGMA = 1.0  # px at the working resolution
BLUR_NEGATIVE_SIGMA = 0.4
SMALL_POSITIVE_AREA = 0.08
SMALL_NEGATIVE_AREA = 0.12
WHITE = (255, 255, 255)
MAX_UPSCALE = 1.25  # objects are never enlarged more than this when placed on a canvas

# ---------------------------------------------------------------------------------------------- labels and seeds


def rng_for(*keys: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(str(k) for k in keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def working_scale(size: tuple[int, int]) -> float:
    """Factor from the image's pixels to the pixels the blur feature is measured on (longer side <= BLUR_SIDE)."""
    return min(1.0, BLUR_SIDE / max(size))


def blur_label(sigma_work: float) -> float | None:
    if sigma_work >= BLUR_POSITIVE_SIGMA:
        return 1.0
    if sigma_work <= BLUR_NEGATIVE_SIGMA:
        return 0.0
    return None


def small_object_label(area: float) -> float | None:
    if area < SMALL_POSITIVE_AREA:
        return 1.0
    if area >= SMALL_NEGATIVE_AREA:
        return 0.0
    return None


def measured_area(image: Image.Image) -> float:
    """Object box area fraction by the preprocess model's rule (runner.object_bbox on a 128 px squashed thumbnail)."""
    thumb = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR))
    top, bottom, left, right = object_bbox(thumb)
    return (bottom - top) * (right - left) / (128.0 * 128.0)


# ---------------------------------------------------------------------------------------------- photo degradations


def gaussian_blur(image: Image.Image, sigma: float) -> Image.Image:
    """PIL's GaussianBlur takes the standard deviation in pixels."""
    return image.filter(ImageFilter.GaussianBlur(sigma)) if sigma > 0 else image.copy()


def line_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """Normalised kernel of a straight camera shake `length` px long (bilinear splats of points along the line)."""
    radius = int(math.ceil(length / 2)) + 1
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float64)
    angle = math.radians(angle_degrees)
    for t in np.linspace(-length / 2, length / 2, max(2, int(length * 4))):
        x, y = radius + t * math.cos(angle), radius + t * math.sin(angle)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    return kernel / kernel.sum()


def motion_blur(image: Image.Image, length: float, angle_degrees: float) -> Image.Image:
    """Uniform linear motion blur (FFT convolution, edges replicated). Its standard deviation is length / sqrt(12)."""
    from scipy.signal import fftconvolve

    kernel = line_kernel(length, angle_degrees)
    pad = kernel.shape[0] // 2
    pixels = np.pad(np.asarray(image.convert("RGB"), np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.stack([fftconvolve(pixels[..., c], kernel, mode="valid") for c in range(3)], axis=2)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def crop_and_resize(
    image: Image.Image, rng: np.random.Generator, min_area: float = 0.5, min_side: int = 560, max_side: int = 1400
) -> Image.Image:
    """A random crop (area fraction in [min_area, 1], aspect jittered) downscaled to a random longer side in
    [min_side, max_side]. Never upscales: upscaling would add blur the label does not account for."""
    width, height = image.size
    area = rng.uniform(min_area, 1.0)
    aspect = math.exp(rng.uniform(-0.2, 0.2))
    crop_w = min(width, max(8, int(round(width * math.sqrt(area) * aspect))))
    crop_h = min(height, max(8, int(round(height * math.sqrt(area) / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    crop = image.crop((left, top, left + crop_w, top + crop_h))
    longer = max(crop.size)
    target = int(rng.uniform(min(min_side, longer), min(max_side, longer) + 1))
    if target < longer:
        scale = target / longer
        crop = crop.resize(
            (max(1, round(crop_w * scale)), max(1, round(crop_h * scale))), Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    return crop


def flat_colours(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A product photo turned into a flat-colour illustration (3-8 colours, sometimes with grain): graphics on white
    that are still products, the hard negatives of the placeholder head."""
    flat = image.convert("RGB").quantize(int(rng.integers(3, 9)), Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    flat = flat.convert("RGB")
    if rng.random() < 0.5:
        pixels = np.asarray(flat).astype(np.int16)
        inked = (pixels < 245).any(axis=2, keepdims=True)
        grain = rng.normal(0, rng.uniform(3, 15), pixels.shape).astype(np.int16)
        flat = Image.fromarray(np.clip(pixels + grain * inked, 0, 255).astype(np.uint8))
    return flat


def has_plain_background(image: Image.Image) -> bool:
    """A studio shot: near-uniform, light border (the object can be cut out of it)."""
    pixels = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR)).astype(np.int16)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    median = np.median(border, axis=0)
    uniform = (np.abs(border - median).max(axis=1) <= BACKGROUND_TOLERANCE).mean()
    return bool(median.min() >= 200 and uniform >= 0.7)  # a model's feet or a cropped hem may touch the edge


def object_crop(image: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The object's bounding box cut out of a studio shot, with its mask (the whole frame when nothing is found)."""
    mask = foreground_mask(np.asarray(image.convert("RGB")))
    rows, cols = np.flatnonzero(mask.mean(axis=1) >= 0.01), np.flatnonzero(mask.mean(axis=0) >= 0.01)
    if rows.size == 0 or cols.size == 0:
        return image.convert("RGB"), np.ones((image.height, image.width), bool)
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return image.convert("RGB").crop(box), mask[box[1] : box[3], box[0] : box[2]]


def canvas_size(rng: np.random.Generator, low: int, high: int, longer: int | None = None) -> tuple[int, int]:
    longer = int(rng.integers(low, high + 1)) if longer is None else int(np.clip(longer, low, high))
    shorter = int(longer * rng.choice([1.0, 1.0, 0.75, 0.8]))
    return (longer, shorter) if rng.random() < 0.5 else (shorter, longer)


def _canvas_for(obj: Image.Image, area: float, rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    """A canvas on which `obj` covers about `area` near its own resolution (small sources are not blown up)."""
    return canvas_size(rng, low, high, round(max(obj.size) / math.sqrt(area) * rng.uniform(0.8, 1.2)))


def _place(
    obj: Image.Image, canvas_size: tuple[int, int], area: float, rng: np.random.Generator
) -> tuple[Image.Image, tuple[int, int], float]:
    """`obj` scaled so its box covers `area` of the canvas (as far as the canvas allows), and a random position."""
    cw, ch = canvas_size
    scale = math.sqrt(area * cw * ch / (obj.width * obj.height))
    scale = min(scale, cw / obj.width, ch / obj.height, MAX_UPSCALE)  # upscaling would blur the object
    size = (max(2, round(obj.width * scale)), max(2, round(obj.height * scale)))
    resized = obj.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    left = int(rng.integers(0, cw - size[0] + 1))
    top = int(rng.integers(0, ch - size[1] + 1))
    return resized, (left, top), size[0] * size[1] / float(cw * ch)


def shrink_on_white(image: Image.Image, area: float, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """The object (its box) shrunk to `area` of a white (or near-white) canvas; returns the image and its true area."""
    obj, _mask = object_crop(image) if has_plain_background(image) else (image.convert("RGB"), None)
    shade = 255 if rng.random() < 0.7 else int(rng.integers(238, 256))
    canvas = Image.new("RGB", _canvas_for(obj, area, rng, 300, 1200), (shade, shade, shade))
    resized, position, true_area = _place(obj, canvas.size, area, rng)
    canvas.paste(resized, position)
    return canvas, true_area


def procedural_background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A textured, non-white scene: a colour gradient, soft blobs and grain (a table, a wall, a shelf out of focus)."""
    w, h = size
    c0, c1 = rng.integers(30, 230, 3), rng.integers(30, 230, 3)
    t = np.linspace(0, 1, h)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, w)[None, :, None]
    pixels = np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).astype(np.float32).copy()
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 14))):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.3) * max(w, h)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(20, 240, 3)))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.01, 0.05) * max(w, h)))
    grain = rng.normal(0, rng.uniform(2, 8), (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8))


def paste_on_scene(
    image: Image.Image, background: Image.Image | None, area: float, rng: np.random.Generator
) -> tuple[Image.Image, float]:
    """The object cut out of a studio shot and pasted at `area` of a defocused natural (or a procedural) scene."""
    obj, mask = object_crop(image) if has_plain_background(image) else (image.convert("RGB"), None)
    size = _canvas_for(obj, area, rng, 300, 900)
    if background is None:
        scene = procedural_background(size, rng)
    else:
        scene = background.convert("RGB")
        side = min(scene.size)
        crop = int(side * rng.uniform(0.6, 1.0))
        left, top = int(rng.integers(0, scene.width - crop + 1)), int(rng.integers(0, scene.height - crop + 1))
        scene = scene.crop((left, top, left + crop, top + crop)).resize(size, Image.Resampling.BICUBIC)
        # Defocused: an in-focus scene photo has its own subject (a product in hand fills the frame: not small).
        scene = scene.filter(ImageFilter.GaussianBlur(rng.uniform(0.01, 0.03) * max(size)))
    resized, position, true_area = _place(obj, scene.size, area, rng)
    if mask is None:
        scene.paste(resized, position)
    else:
        alpha = Image.fromarray((mask * 255).astype(np.uint8)).resize(resized.size, Image.Resampling.BILINEAR)
        scene.paste(resized, position, alpha.filter(ImageFilter.GaussianBlur(1)))
    return scene, true_area
