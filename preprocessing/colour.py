"""Colour histogram of an image's foreground, after a tone normalisation: the signal that tells two colourways of one
product apart (the grey-level hashes are blind to colour).

- tone: only foreground pixels count, after an affine tone normalisation (the 5th and 90th luminance percentiles of
  the foreground map to 0 and 1, the same map on R, G and B), which undoes brightness and contrast changes (PIL's
  ImageEnhance ones exactly) up to clipping; soft bins keep JPEG noise from flipping pixels between bins. Grey and
  black colourways still differ where anything else in the picture (skin, shoes, a trim) anchors the normalisation;
  a lone all-grey product and its all-black colourway normalise alike (known limit).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from contract.colours import BASIC_COLOURS
from preprocessing.foreground import duplicate_mask

# Pictures (or masks) with fewer foreground pixels than this are counted whole.
MIN_FOREGROUND_PIXELS = 16
# Tone normalisation: these foreground luminance percentiles map to 0 and 1 (skipped for a flat picture). The upper
# one is below the top so that a brightened copy, whose highlights clipped at 255, still maps its unclipped 90% alike.
TONE_PERCENTILES = (5.0, 90.0)
MIN_TONE_RANGE = 0.05
# Histogram: achromatic pixels by tone, chromatic pixels by hue x saturation; a pixel's weight moves from the
# achromatic to the chromatic part as its saturation (and value) ramp up, and every axis uses linear soft bins.
TONE_BINS, HUE_BINS, SAT_BINS = 4, 12, 2
HSV_HIST_BINS = TONE_BINS + HUE_BINS * SAT_BINS  # contract.tensors.HSV_HIST_BINS, the HSV_HIST output's width
CHROMA_SATURATION_RAMP = (0.12, 0.30)
CHROMA_VALUE_RAMP = (0.12, 0.25)  # hue means little in near-black pixels


def _hsv(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1], saturation and value clipped to [0, 1], of float32 channels that may leave [0, 1] (the tone
    normalisation does not clip, so the hue of a pixel brighter than the upper percentile is not distorted).

    Hue: with the top channel's difference d of the other two, in channel order, and the spread s (max - min), the
    sector q = d / s lies in [-1, 1]; hue = (q % 6) / 6 for red on top (taken first on ties), (q + 2) / 6 for green,
    (q + 4) / 6 for blue, 0 for a grey pixel. On [-1, 1] numpy's float remainder q % 6 is q + 6 below zero and q from
    zero up (a -0 made +0), exactly what q + 6 and q + 0 give, so one division and one addition serve all three
    branches. Tests pin the histogram to the straightforward form (tests/gateway/hashing/reference.py).
    """
    top = np.maximum(np.maximum(red, green), blue)
    spread = top - np.minimum(np.minimum(red, green), blue)
    chromatic = spread > 0
    red_top = top == red
    green_top = top == green
    difference = np.where(red_top, green - blue, np.where(green_top, blue - red, red - green))
    sector = np.zeros_like(top)  # a grey pixel is red on top, with q = +0: its hue is +0
    np.divide(difference, spread, out=sector, where=chromatic)
    offset = np.where(red_top, (sector < 0) * np.float32(6.0), np.float32(4.0) - green_top * np.float32(2.0))
    hue = sector + offset
    hue /= 6
    saturation = np.zeros_like(top)
    np.divide(spread, top, out=saturation, where=top > 0)
    np.minimum(saturation, 1.0, out=saturation)  # spread >= 0 and top > 0 where divided: never below 0
    return hue, saturation, np.clip(top, 0.0, 1.0)


def _soft_bins(x: np.ndarray, n: int, circular: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear soft binning of x in [0, 1] into n bins: (lower bin, upper bin, weight of the upper bin)."""
    position = x * n - 0.5
    low = np.floor(position)
    upper_weight = position - low
    low = low.astype(np.intp)
    high = low + 1
    if circular:
        return low % n, high % n, upper_weight
    return np.clip(low, 0, n - 1), np.clip(high, 0, n - 1), upper_weight


def _ramp(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return np.clip((x - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0)


def _tone_range(luminance: np.ndarray) -> tuple[float, float]:
    """np.percentile(luminance, TONE_PERCENTILES) / 255 of uint8 values, bit for bit, without its partitioning: the
    order statistics are read from a 256-bin count, then numpy's own `linear` interpolation is applied (virtual index
    (n - 1) q; a + (b - a) g below g = 0.5, b - (b - a)(1 - g) from there; the maximum at or past the last index).
    Tests pin it to np.percentile."""
    n = luminance.size
    cumulative = np.bincount(luminance, minlength=256).cumsum()

    def order_statistic(k: int) -> int:
        return int(np.searchsorted(cumulative, k, side="right"))

    ends = []
    for percentile in TONE_PERCENTILES:
        virtual = (n - 1) * (percentile / 100)
        if virtual >= n - 1:
            ends.append(order_statistic(n - 1) / 255.0)
            continue
        previous = math.floor(virtual)
        below, above = order_statistic(previous), order_statistic(previous + 1)
        gamma = virtual - previous
        step = above - below
        ends.append((above - step * (1 - gamma) if gamma >= 0.5 else below + step * gamma) / 255.0)
    return ends[0], ends[1]


def _foreground_pixels(pixels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(n, 3) uint8: the pixels of `mask` in row-major order; all of them where there is no mask or it has fewer than
    MIN_FOREGROUND_PIXELS."""
    if mask is None or np.count_nonzero(mask) < MIN_FOREGROUND_PIXELS:
        mask = np.ones(pixels.shape[:2], dtype=bool)
    return np.take(pixels.reshape(-1, 3), np.flatnonzero(mask), axis=0)  # 4x faster than pixels[mask]


def _foreground_channels(foreground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (n, 3) uint8 pixels' luminance (PIL's ITU-R 601-2 luma: its own conversion, on these pixels only) and
    their (3, n) float32 R, G, B in [0, 1]."""
    luminance = np.asarray(Image.fromarray(foreground.reshape(1, -1, 3)).convert("L")).ravel()
    channels = foreground.T.astype(np.float32, order="C")
    channels /= 255.0
    return luminance, channels


def colour_histogram(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """HSV_HIST_BINS float32 summing to 1: TONE_BINS achromatic tone bins, then HUE_BINS x SAT_BINS chromatic bins.

    Counts the pixels of `mask` (all when it has fewer than MIN_FOREGROUND_PIXELS) after the tone normalisation.
    Grey-level hashes are blind to colour; this is what tells two colourways of one product apart.
    """
    luminance, channels = _foreground_channels(_foreground_pixels(np.asarray(rgb, dtype=np.uint8), mask))
    low, high = _tone_range(luminance)
    if high - low >= MIN_TONE_RANGE:  # the same affine map on R, G and B, not clipped: hue stays exact
        channels -= np.float32(low)
        channels *= np.float32(1.0 / (high - low))
    hue, saturation, value = _hsv(*channels)
    chroma = _ramp(saturation, CHROMA_SATURATION_RAMP) * _ramp(value, CHROMA_VALUE_RAMP)

    tone_low, tone_high, tone_up = _soft_bins(value, TONE_BINS, circular=False)
    achromatic = 1 - chroma
    tone = np.bincount(tone_low, achromatic * (1 - tone_up), TONE_BINS)
    tone += np.bincount(tone_high, achromatic * tone_up, TONE_BINS)
    hue_low, hue_high, hue_up = _soft_bins(hue, HUE_BINS, circular=True)
    sat = (saturation - CHROMA_SATURATION_RAMP[0]) / (1 - CHROMA_SATURATION_RAMP[0])
    sat_low, sat_high, sat_up = _soft_bins(np.clip(sat, 0.0, 1.0), SAT_BINS, circular=False)
    sat_parts = ((sat_low, 1 - sat_up), (sat_high, sat_up))
    colour = np.zeros(HUE_BINS * SAT_BINS)
    for hue_bin, hue_weight in ((hue_low, 1 - hue_up), (hue_high, hue_up)):
        first_bin, hue_chroma = hue_bin * SAT_BINS, chroma * hue_weight
        for sat_bin, sat_weight in sat_parts:
            colour += np.bincount(first_bin + sat_bin, hue_chroma * sat_weight, HUE_BINS * SAT_BINS)
    histogram = np.concatenate([tone, colour])
    return (histogram / histogram.sum()).astype(np.float32)


def hsv_histogram(img: Image.Image) -> np.ndarray:
    """colour_histogram of a picture's foreground as duplicate detection sees it (hash_features' HSV_HIST)."""
    rgb = np.asarray(img.convert("RGB"))
    return colour_histogram(rgb, duplicate_mask(rgb))


# Naming pixels with the basic colour terms (contract.colours.BASIC_COLOURS), on the picture's own colours (no tone
# normalisation: a name is about the colour as shot). A pixel's chroma (max - min of R, G, B in [0, 1]) moves its
# weight from its achromatic term (black, gray or white by its value) to its chromatic one across NAMING_CHROMA_RAMP,
# so a shade near the boundary does not flip between pictures; the chromatic term is its HSV hue sector's, the dark
# end of the orange and yellow sectors being brown and of the pink sector purple. Boundaries set by eye on sRGB hue
# circles; green / blue / purple then moved to the development catalog's hue modes (its "purple" garments sit at
# 245-265 degrees, its "blue" at 175-245: BENCHMARKS.md "Third pass: the product's colour named").
NAMING_CHROMA_RAMP = (0.08, 0.16)
NAMING_BLACK_BELOW, NAMING_WHITE_ABOVE = 0.22, 0.85  # value of achromatic pixels
# (upper end of the hue sector in degrees, its term, (the term instead, below this value) or None)
NAMING_HUES = (
    (15.0, "red", None),
    (45.0, "orange", ("brown", 0.6)),
    (70.0, "yellow", ("brown", 0.5)),
    (170.0, "green", None),
    (240.0, "blue", None),
    (290.0, "purple", None),
    (345.0, "pink", ("purple", 0.5)),
    (360.0, "red", None),
)


def colour_name_shares(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(len(BASIC_COLOURS),) float32 summing to 1: the share of the masked pixels (all when the mask has fewer than
    MIN_FOREGROUND_PIXELS; default: the duplicate foreground) that each basic colour term names.

    Each pixel is named as the centre of its cell of 5 bits a channel (a table of the 32,768 cells, named once by
    _name_pixels): one gather an image instead of a dozen array passes (0.18 -> 0.12 ms on a 64 px thumbnail, the
    mask 0.05 of it), at most 4 levels off on any channel."""
    pixels = np.asarray(rgb, dtype=np.uint8)
    foreground = _foreground_pixels(pixels, duplicate_mask(pixels) if mask is None else mask) >> 3
    cells = (foreground[:, 0].astype(np.intp) << 10) | (foreground[:, 1].astype(np.intp) << 5) | foreground[:, 2]
    shares = _naming_table()[cells].sum(axis=0)
    return shares / shares.sum()


def _name_pixels(channels: np.ndarray) -> np.ndarray:
    """(n, len(BASIC_COLOURS)) float32: how each pixel of (3, n) float32 R, G, B in [0, 1] splits between its
    achromatic and its chromatic term (NAMING_* above)."""
    term = {name: index for index, name in enumerate(BASIC_COLOURS)}
    hue, saturation, value = _hsv(*channels)
    achromatic = np.where(
        value < NAMING_BLACK_BELOW, term["black"], np.where(value > NAMING_WHITE_ABOVE, term["white"], term["gray"])
    )
    ends = np.array([upper for upper, _, _ in NAMING_HUES[:-1]])
    sector = np.searchsorted(ends, hue * 360.0, side="right")
    sector_term = np.array([term[name] for _, name, _ in NAMING_HUES])
    sector_dark_term = np.array([term[dark[0] if dark else name] for _, name, dark in NAMING_HUES])
    sector_dark_below = np.array([dark[1] if dark else 0.0 for _, _, dark in NAMING_HUES])
    chromatic = np.where(value < sector_dark_below[sector], sector_dark_term[sector], sector_term[sector])
    weight = _ramp(saturation * value, NAMING_CHROMA_RAMP)
    named = np.zeros((hue.size, len(BASIC_COLOURS)), np.float32)
    rows = np.arange(hue.size)
    named[rows, achromatic] = 1 - weight
    named[rows, chromatic] += weight
    return named


@functools.cache
def _naming_table() -> np.ndarray:
    """(32768, len(BASIC_COLOURS)): _name_pixels of each 5-bit cell's centre, indexed (r >> 3) << 10 | (g >> 3) << 5 |
    b >> 3."""
    levels = (np.arange(32, dtype=np.float32) * 8 + 3.5) / 255.0
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return _name_pixels(np.stack([r.ravel(), g.ravel(), b.ravel()]))
