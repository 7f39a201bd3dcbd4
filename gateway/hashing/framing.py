"""The framing rescue: a cropped or padded copy compared with its original on the window the two pictures share.

A supplier's re-export that crops a few percent off a close-up, or pads it onto a larger canvas, moves both hashes
past their thresholds when the product fills the frame: the content box (preprocessing.perceptual) cannot follow a
picture that has no background around the product, and the colour histogram's foreground mask turns into its
complement when a white pad arrives around a garment. The picture itself is unchanged: one of the two is a window
of the other, resampled. So for a pair the rule rejects, the window of the larger picture that the smaller one fills
is searched for, and the three signals are compared again between the interior of the smaller picture and the
interior of that window, each resampled to a thumbnail (pHash, dHash-edge, colour with its tone rescue, at the
category's thresholds): still "all three agree", on the part both pictures show.

The search works on grey versions of THUMB (128 x 128, aspect squashed), with each image's real aspect (ORIG_SIZE):
the window's aspect must equal the smaller picture's, so a window has three degrees of freedom (its width share and
its position). Zero-mean normalised cross-correlation (tone-invariant) over width shares from `min_share` to 1 in
steps of 1/16 and every position at 32 px, both directions (which picture is the window of which), then the better
direction refined at 64 and 128 px (+-2 width pixels and +-2 positions at each). A window is at least `min_share` of
the larger picture on each axis, so a detail shot cut from a photo (a zoom on a label) is another picture, and it
must leave out at least MIN_REFRAME_PX of the larger thumbnail on one axis: a whole-picture "window" re-frames
nothing. Under CROP_MIN_SHARE on an axis, a window counts only inside a plain pad: a deeper cut into the picture is a
zoom on a part of it.

Most pairs stop early, which is what keeps the rescue affordable per request: pairs whose middles differ in colour
(centre_colours, CENTRE_CHI2_MAX) are not searched; a search whose best re-framing correlates under MIN_CORRELATION
at 32 px, or no better than the two pictures as they are (a colourway re-coloured from the same shot), ends there,
and so does one whose refined window correlates under MIN_REFINED_CORRELATION at 64 or 128 px (another shot in the
same pose) before its hashes are taken.

Measured on the labelled pairs: BENCHMARKS.md, "De-duplication recall", step 10.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from PIL import Image

from contract.tensors import THUMB_SIDE
from gateway.hashing.pyramid import LEVELS, GreyPyramid, Sizes, fill_as_large, fill_as_small, fill_levels
from gateway.hashing.tone import thumbnail_image

MIN_CORRELATION = 0.9  # coarse zero-mean NCC a window needs before it is refined and its signals compared
# ... and after each refinement (64 and 128 px), before the next level and the hashes. A copy's window, resampled from
# the same pixels, correlates >= 0.935 at 64 px and >= 0.927 at 128 px on the tuning pairs (>= 0.961 / 0.968 held
# out); another shot in the same pose, what the benchmark's model photos are, 0.87-0.95: 15 of the 19 refined windows
# of 40 such products stop here, before the window's hashes (`python -m loadtest.dedup_cost --images 320 --products
# 40`; BENCHMARKS.md, issue #13).
MIN_REFINED_CORRELATION = 0.92
COARSE_STEP = 2  # width pixels between the coarse level's trial shares (1/16 of the picture)
# The signals are compared on the window's interior, this share of its width and height in from every side: a pad's
# edge is blended with the picture over ~2 px of the 128 px thumbnail (the resampling filter), which would otherwise
# differ from the original's own edge (on the tuning pairs, 0 / 0.015 / 0.03: recall 0.969 / 0.972 / 0.972 at
# precision 0.995; the smaller of the two best).
EDGE_MARGIN = 0.015
# A window must leave out at least this many pixels of the larger 128 px thumbnail on one axis: a "window" that is
# the whole picture re-frames nothing, and comparing it again would only re-sample two pictures the rule rejected.
MIN_REFRAME_PX = 2
# A re-export crops a little; a window under this share of the larger picture on an axis counts only where what lies
# around it is plain canvas (a pad): a deeper cut into the picture is a zoom on a part of it, a view a shop shows on
# purpose (Commerce Kickstart's bag and mug close-ups are 74-77% crops of their main photos). The labelled crops cut
# at most 8% an axis; pads of up to 15% a side make windows down to 77%.
CROP_MIN_SHARE = 0.85
# plain: PLAIN_SHARE of the pixels PLAIN_GAP (128 px thumbnail pixels: the window's placement error) clear of the
# window within PLAIN_LEVELS grey levels of their median
PLAIN_GAP, PLAIN_LEVELS, PLAIN_SHARE = 4, 10.0, 0.95
# +- width pixels and +- positions searched around the previous level's best, at each finer level: 2 at 64 px (the
# coarse level tried every other width) and at 128 px (1 there loses 1-2 of the pairs rescued on the labelled sets)
_REFINE_STEPS = {1: 2, 2: 2}
_MIN_SIDE = 4
# The prefilter: a crop or pad copy keeping `min_share` of the frame shows the same middle of the picture, so the
# colours of the two pictures' middle halves agree; pairs whose centre_colours differ by a chi-square over this are not
# searched. On the benchmark's 8-image products 19% of the pairs pass at 0.3, 37% at 0.5; of the 74 labelled copies
# the rescue takes without it, 72 pass at 0.3 and 73 at 0.5 (BENCHMARKS.md "De-duplication recall", step 10).
CENTRE_CHI2_MAX = 0.3
# The most pairs one product's duplicate matrix (gateway.hashing.duplicate_matrix: a select or dedup request) searches
# for a window, those whose middles agree best first: a bound on the rescue's CPU and memory per request (each search
# ~0.1-5 ms and its caches ~0.2 MB), where /v1/dedup may send 200 images (19,900 pairs). The benchmark's 8-image
# products search ~10 pairs even when all of them are of one type.
MAX_FRAMED_PAIRS = 32


# (correlation, x, y, width) of one placement of the smaller picture, in pixels of one pyramid level
_Placement = tuple[float, int, int, int]


@dataclass(frozen=True)
class Window:
    """Where the smaller picture sits in the larger one: fractions of the larger picture's width and height."""

    x0: float
    y0: float
    width: float
    height: float
    correlation: float

    def inset(self, margin: float) -> Window:
        """The window less `margin` of its width and height on every side."""
        return Window(
            self.x0 + margin * self.width,
            self.y0 + margin * self.height,
            self.width * (1 - 2 * margin),
            self.height * (1 - 2 * margin),
            self.correlation,
        )


@functools.lru_cache(maxsize=1024)
def _coarse_sizes(aspect: float, min_share: float) -> Sizes:
    """The window sizes the coarse level tries: widths from the whole side down to `min_share` of it, COARSE_STEP
    pixels apart, each with the height its aspect gives; those inside the limits."""
    side = LEVELS[0]
    widths = range(side, int(np.ceil(min_share * side - 0.5)) - 1, -COARSE_STEP)
    sizes = ((round(width * aspect), width) for width in widths)
    return tuple((h, w) for h, w in sizes if _fits(w, h, side, min_share))


def _fits(width_px: int, height_px: int, side: int, min_share: float) -> bool:
    """Whether a window of width_px x height_px at a level of `side` pixels keeps within the picture and covers at
    least `min_share` of it on each axis (to half a pixel)."""
    lowest = min_share * side - 0.5
    return lowest <= width_px <= side and lowest <= height_px <= side and min(width_px, height_px) >= _MIN_SIDE


def _coarse(
    directions: Sequence[tuple[GreyPyramid, GreyPyramid, float]], min_share: float, as_they_are: Sequence[float]
) -> list[_Placement | None]:
    """Per direction (the larger picture, the smaller, the smaller's aspect), the best re-framing at LEVELS[0] over
    every coarse window size and every position, all at once: one product of spectra and one inverse FFT for all
    the directions that try the same window sizes, the rest cached per picture (GreyPyramid.as_large / as_small),
    since every picture of a product meets the others at the same sizes; in float32, which ranks placements alike.
    None where it correlates under MIN_CORRELATION, or no better than the two whole pictures do (`as_they_are`,
    _whole_correlation, one per direction)."""
    found: list[_Placement | None] = [None] * len(directions)
    by_sizes: dict[Sizes, list[int]] = {}
    for d, (_, _, aspect) in enumerate(directions):
        by_sizes.setdefault(_coarse_sizes(round(aspect, 4), min_share), []).append(d)
    side = LEVELS[0]
    for sizes, members in by_sizes.items():
        if not sizes:
            continue
        larges, smalls = [directions[d][0] for d in members], [directions[d][1] for d in members]
        fill_as_large(larges, sizes)
        fill_as_small(smalls, sizes)
        spectra = np.stack([large.as_large(sizes)[0] for large in larges])
        deviation = np.stack([large.as_large(sizes)[1] for large in larges])
        templates = np.stack([small.as_small(sizes) for small in smalls])
        # correlation[., k, y, x] = sum over template k of picture[y + u, x + v] * template[u, v]: circular, but every
        # position where the window stays inside the picture (finite deviation) reads no wrapped pixel; the others
        # (infinite deviation) come out as 0, which cannot reach MIN_CORRELATION
        ncc = scipy.fft.irfft2(spectra[:, None] * templates, s=(side, side))
        ncc /= deviation
        # The whole picture is no re-framing: the best placement is sought among the others, and it must correlate
        # better than the two pictures as they are, each whole picture squashed to the level's square (whatever their
        # aspects): a colourway re-coloured from the same shot, or a look-alike whose picture is a little wider,
        # correlates best whole; a crop copy correlates best at its window.
        if sizes[0] == (side, side):
            ncc[:, 0, 0, 0] = -np.inf
        flat = ncc.reshape(len(members), -1)
        best = flat.argmax(axis=1)
        for row, d in enumerate(members):
            k, y, x = np.unravel_index(int(best[row]), ncc.shape[1:])
            correlation = float(flat[row, best[row]])
            if correlation >= MIN_CORRELATION and correlation > as_they_are[d]:
                found[d] = correlation, int(x), int(y), sizes[k][1]
    return found


def _whole_correlation(a: GreyPyramid, b: GreyPyramid) -> float:
    """Zero-mean NCC of the two whole pictures at LEVELS[0] (squashed to its square, as THUMB is)."""
    x, y = (p.level(0) - p.level(0).mean() for p in (a, b))
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / norm if norm > 1e-6 else 1.0  # a flat picture: nothing to tell re-framed


def _refine(
    large: GreyPyramid, small: GreyPyramid, aspect: float, min_share: float, best: _Placement
) -> _Placement | None:
    """The coarse placement refined at each finer level: +-_REFINE_STEPS width pixels and positions around it; None
    once it correlates under MIN_REFINED_CORRELATION."""
    for level in range(1, len(LEVELS)):
        scale = LEVELS[level] / LEVELS[level - 1]
        _, x, y, width_px = best
        centre = (round(x * scale), round(y * scale))
        refined = (
            _best_at(large, small, level, round(width_px * scale) + step, aspect, min_share, centre)
            for step in range(-_REFINE_STEPS[level], _REFINE_STEPS[level] + 1)
        )
        best = max((p for p in refined if p is not None), key=lambda p: p[0], default=None)
        if best is None or best[0] < MIN_REFINED_CORRELATION:
            return None
    return best


def _best_at(
    large: GreyPyramid,
    small: GreyPyramid,
    level: int,
    width_px: int,
    aspect: float,
    min_share: float,
    centre: tuple[int, int] | None,
) -> _Placement | None:
    """The best placement of `small` at this width in `large`'s level: every
    position, or those within _REFINE_STEPS pixels of `centre`; None for a width whose window breaks the limits."""
    side = LEVELS[level]
    height_px = round(width_px * aspect)
    if not _fits(width_px, height_px, side, min_share):
        return None
    template = small.template(level, width_px, height_px)
    free_x, free_y = side - width_px, side - height_px
    if centre is None:
        xs, ys = range(0, free_x + 1), range(0, free_y + 1)
    else:
        reach = _REFINE_STEPS[level]
        xs = range(max(0, centre[0] - reach), min(free_x, centre[0] + reach) + 1)
        ys = range(max(0, centre[1] - reach), min(free_y, centre[1] + reach) + 1)
    if not len(xs) or not len(ys):
        return None
    ncc = large.correlations(level, template, ys, xs)
    k = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    return float(ncc[k]), xs[k[1]], ys[k[0]], width_px


# One pair the rescue searches: (picture a's pyramid, its width and height, picture b's pyramid, its width and height)
Pair = tuple[GreyPyramid, tuple[int, int], GreyPyramid, tuple[int, int]]


def best_window(
    a: GreyPyramid, a_size: tuple[int, int], b: GreyPyramid, b_size: tuple[int, int], min_share: float
) -> tuple[Window, bool] | None:
    """Where one picture is a window of the other (sizes: each picture's width, height): (the window, whether `a` is
    the larger picture), or None. best_windows of one pair."""
    return best_windows([(a, a_size, b, b_size)], min_share)[0]


def best_windows(pairs: Sequence[Pair], min_share: float) -> list[tuple[Window, bool] | None]:
    """Per pair, where one picture is a window of the other: (the window, whether `a` is the larger picture), or None
    when no window of at least `min_share` of the larger picture on each axis correlates at MIN_CORRELATION at the
    coarse level, and better than the whole pictures do, and at MIN_REFINED_CORRELATION once refined (the
    correlation returned), or the window breaks MIN_REFRAME_PX or CROP_MIN_SHARE. The coarse level of every pair is
    searched at once (_coarse); the few pairs that pass it are refined one by one."""
    directions: list[tuple[GreyPyramid, GreyPyramid, float]] = []
    owners: list[tuple[int, bool]] = []  # per direction: its pair, whether the pair's `a` is the larger picture
    as_they_are: list[float] = []
    searched = [k for k, (_, (wa, ha), _, (wb, hb)) in enumerate(pairs) if min(wa, ha, wb, hb) > 0]
    fill_levels([p for k in searched for p in (pairs[k][0], pairs[k][2])], 0)
    for k in searched:
        a, (wa, ha), b, (wb, hb) = pairs[k]
        whole = _whole_correlation(a, b)  # symmetric: once for both directions
        # a window of width share w in the larger picture has height share w * aspect (the smaller picture's aspect)
        directions += [(a, b, wa * hb / (ha * wb)), (b, a, wb * ha / (hb * wa))]
        owners += [(k, True), (k, False)]
        as_they_are += [whole, whole]
    coarse = _coarse(directions, min_share, as_they_are)
    candidates: dict[int, list[int]] = {}
    for d, placement in enumerate(coarse):
        if placement is not None:
            candidates.setdefault(owners[d][0], []).append(d)
    windows: list[tuple[Window, bool] | None] = [None] * len(pairs)
    for k, found in candidates.items():
        d = max(found, key=lambda d: coarse[d][0])  # the better direction; a tie keeps `a` as the larger
        large, small, aspect = directions[d]
        windows[k] = _refined_window(large, small, aspect, min_share, coarse[d], owners[d][1])
    return windows


def _refined_window(
    large: GreyPyramid, small: GreyPyramid, aspect: float, min_share: float, placement: _Placement, a_large: bool
) -> tuple[Window, bool] | None:
    """The coarse placement refined, and the window it gives, unless it breaks MIN_REFINED_CORRELATION,
    MIN_REFRAME_PX or CROP_MIN_SHARE."""
    best = _refine(large, small, aspect, min_share, placement)
    if best is None:
        return None
    correlation, x, y, width_px = best
    side = LEVELS[-1]
    height_px = round(width_px * aspect)
    if side - min(width_px, height_px) < MIN_REFRAME_PX:
        return None  # the whole picture: nothing re-framed, the rule has compared the two already
    if min(width_px, height_px) < CROP_MIN_SHARE * side and not _plain_outside(large, x, y, width_px, height_px):
        return None  # a deep cut into the picture: a zoom on a part of it, another view
    return Window(x / side, y / side, width_px / side, height_px / side, correlation), a_large


def _plain_outside(large: GreyPyramid, x: int, y: int, width: int, height: int) -> bool:
    """Whether the larger picture around the window (at 128 px, PLAIN_GAP pixels clear of the window's edge) is a
    plain canvas: nearly all its pixels within PLAIN_LEVELS grey levels of their median."""
    pixels = large.level(len(LEVELS) - 1)
    outside = np.ones(pixels.shape, dtype=bool)
    outside[max(0, y - PLAIN_GAP) : y + height + PLAIN_GAP, max(0, x - PLAIN_GAP) : x + width + PLAIN_GAP] = False
    values = pixels[outside]
    if values.size == 0:
        return True
    return float(np.mean(np.abs(values - np.median(values)) <= PLAIN_LEVELS)) >= PLAIN_SHARE


WHOLE = Window(0.0, 0.0, 1.0, 1.0, 1.0)  # the whole picture

_CENTRE_BINS = 4  # per RGB channel


def centre_colours(thumb: np.ndarray | Image.Image) -> np.ndarray:
    """(64,) float64: the joint RGB histogram (4 levels a channel) of the middle half of a THUMB (each side), summing
    to 1: the prefilter's signature (CENTRE_CHI2_MAX)."""
    pixels = np.asarray(thumb)
    pixels = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]  # grey: as RGB
    side = pixels.shape[0]
    middle = pixels[side // 4 : side - side // 4, side // 4 : side - side // 4].reshape(-1, 3) // (256 // _CENTRE_BINS)
    bins = (middle[:, 0].astype(np.int64) * _CENTRE_BINS + middle[:, 1]) * _CENTRE_BINS + middle[:, 2]
    counts = np.bincount(bins, minlength=_CENTRE_BINS**3).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def interior_thumbnail(thumb: np.ndarray | Image.Image, window: Window) -> np.ndarray:
    """(128, 128, 3) uint8: the interior of a window of a THUMB (EDGE_MARGIN in from every side) resampled to a whole
    thumbnail: what the framing rescue's hashes are taken on."""
    return window_thumbnail(thumb, window.inset(EDGE_MARGIN))


def window_thumbnail(thumb: np.ndarray | Image.Image, window: Window) -> np.ndarray:
    """(128, 128, 3) uint8: the window of a THUMB resampled to a whole thumbnail."""
    img = thumbnail_image(thumb)
    w, h = img.size
    box = (
        window.x0 * w,
        window.y0 * h,
        min((window.x0 + window.width) * w, float(w)),
        min((window.y0 + window.height) * h, float(h)),
    )
    return np.asarray(img.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, box=box))
