"""The duplicate rule, written once: two images are duplicates only when all three signals agree, pHash Hamming
<= phash_max_distance, edge-dHash Hamming <= dhash_edge_max_distance and HSV-histogram chi-square <= hsv_chi2_max.

`within_thresholds` applies it to distances; `verify_pairs` to pairs of images given by index, `duplicate_matrix` to
every pair of one product's images. The gateway, catalog-scale clustering and the evaluation all go through it.
The colour signal (`colour_distances`) is the chi-square, or 0 for a pair whose histograms differ only by a global
tone change (gateway.hashing.tone: the tone rescue, where the images have tone thumbnails). A pair the rule rejects
is compared again on the window one picture fills in the other, where it has one (gateway.hashing.framing: the
framing rescue of crop and pad copies, where the images have thumbnails and sizes): the same three signals, taken
on the smaller picture and that window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from contract.categories import DedupThresholds
from gateway.hashing.distances import chi2_distance, chi2_pairs, hamming
from gateway.hashing.framing import (
    CENTRE_CHI2_MAX,
    MAX_FRAMED_PAIRS,
    WHOLE,
    GreyPyramid,
    best_windows,
    centre_colours,
    interior_thumbnail,
)
from gateway.hashing.tone import thumbnail_array, tone_residuals, tone_thumbnail
from preprocessing.colour import colour_name_shares
from preprocessing.perceptual import StagedFeatures, hash_features

# A signal's distances: one per pair, or a function giving the distances of the pairs at the positions it is passed.
Distances = np.ndarray | Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class ImageHashes:
    """Everything duplicate detection needs about one image (eq=False: the ndarray fields have no boolean ==)."""

    phash: int
    dhash_edge: int
    hsv_hist: np.ndarray
    thumb: np.ndarray | Image.Image | None = None  # the thumbnail the tone thumbnail comes from; None: no tone rescue
    size: tuple[int, int] | None = None  # the picture's width, height; None (or no thumb): no framing rescue

    @cached_property
    def tone(self) -> np.ndarray | None:
        """(32, 32, 3) uint8 tone thumbnail (gateway.hashing.tone), made on first use: only pairs the tone rescue
        could change need it (~0.05 ms an image)."""
        return None if self.thumb is None else tone_thumbnail(self.thumb)

    @cached_property
    def pyramid(self) -> GreyPyramid | None:
        """The grey pyramid the framing rescue searches (gateway.hashing.framing), made on first use."""
        return None if self.thumb is None else GreyPyramid(self.thumb)

    @cached_property
    def colour_names(self) -> np.ndarray | None:
        """Each basic colour term's share of the thumbnail's foreground (preprocessing.colour.colour_name_shares),
        made on first use: only a product whose colour the request names needs it; None without a thumbnail. Every
        second pixel of every second row: a share of the area needs no more, at a quarter of the work."""
        return None if self.thumb is None else colour_name_shares(thumbnail_array(self.thumb)[::2, ::2])

    @cached_property
    def centre(self) -> np.ndarray:
        """The colours of the picture's middle (gateway.hashing.framing.centre_colours): the framing rescue's
        prefilter. Needs the thumbnail."""
        return centre_colours(self.thumb)

    @cached_property
    def interior(self) -> FramedHashes:
        """The signals of the picture's interior (gateway.hashing.framing.interior_thumbnail of the whole picture):
        what the framing rescue compares with the interior of a window of another picture. Needs the thumbnail."""
        return FramedHashes(interior_thumbnail(self.thumb, WHOLE))


class FramedHashes:
    """The three signals of a thumbnail the framing rescue resampled (a window's interior, or a whole picture's), each
    made on first use: framed_signals compares the hashes first, and takes the colour histogram (more than half of
    the cost) and the tone thumbnail only where both hashes agree, which no window of another shot has done on the
    benchmark's products."""

    def __init__(self, thumb: np.ndarray):
        self.thumb = thumb
        self._features = StagedFeatures(thumb)

    @property
    def phash(self) -> int:
        return self._features.hashes[0]

    @property
    def dhash_edge(self) -> int:
        return self._features.hashes[1]

    @property
    def hsv_hist(self) -> np.ndarray:
        return self._features.histogram

    @cached_property
    def tone(self) -> np.ndarray:
        return tone_thumbnail(self.thumb)


def compute_hashes(thumb, size: tuple[int, int] | None = None) -> ImageHashes:
    """preprocessing.perceptual.hash_features of a thumbnail (uint8 HxWx3 array or PIL image) as ImageHashes: what
    the cpu profile's Triton model returns as PHASH, DHASH_EDGE and HSV_HIST, for profiles that do not; the
    thumbnail kept for the tone thumbnail, and with `size` (the picture's width, height) for the framing rescue."""
    return ImageHashes(*hash_features(thumb), thumb=thumb, size=size)


@dataclass(frozen=True)
class HashVectors:
    """The hashes of n images as arrays: phash and dhash_edge (n,) uint64, hsv_hist (n, k) float32."""

    phash: np.ndarray
    dhash_edge: np.ndarray
    hsv_hist: np.ndarray
    # rows -> their (len(rows), 32, 32, 3) uint8 tone thumbnails, made when a pair needs them; None: no tone rescue
    tone: Callable[[np.ndarray], np.ndarray] | None = None
    # rows -> their ImageHashes with thumbnail and size (the framing rescue); None: no framing rescue
    images: Callable[[np.ndarray], Sequence[ImageHashes]] | None = None

    def __post_init__(self) -> None:
        n = len(self.phash)
        if len(self.dhash_edge) != n or self.hsv_hist.ndim != 2 or self.hsv_hist.shape[0] != n:
            raise ValueError(
                f"hash vectors disagree on n: phash {len(self.phash)}, dhash_edge {len(self.dhash_edge)}, "
                f"hsv_hist {self.hsv_hist.shape}"
            )

    @classmethod
    def of(cls, phash, dhash_edge, hsv_hist, tone=None, images: Sequence[ImageHashes] | None = None) -> HashVectors:
        """`tone`: an (n, 32, 32, 3) array of tone thumbnails, or None; `images`: the n images' ImageHashes with
        thumbnails and sizes (the framing rescue), or None."""
        tones = None if tone is None else np.asarray(tone, dtype=np.uint8)
        return cls(
            np.asarray(phash, dtype=np.uint64),
            np.asarray(dhash_edge, dtype=np.uint64),
            np.asarray(hsv_hist),
            None if tones is None else tones.__getitem__,
            None if images is None else _rows_of(images),
        )

    @classmethod
    def from_hashes(cls, hashes: Sequence[ImageHashes]) -> HashVectors:
        """From ImageHashes objects (anything with phash, dhash_edge, hsv_hist, and tone: with the tone rescue only
        when every image has a thumbnail, the framing rescue only when every image also has a size)."""
        if not hashes:
            return cls.of(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros((0, 1), np.float32))
        with_tone = all(getattr(h, "thumb", None) is not None for h in hashes)
        framable = with_tone and all(getattr(h, "size", None) is not None for h in hashes)
        return cls(
            np.array([h.phash for h in hashes], dtype=np.uint64),
            np.array([h.dhash_edge for h in hashes], dtype=np.uint64),
            np.stack([h.hsv_hist for h in hashes]),
            (lambda rows: np.stack([hashes[int(r)].tone for r in rows])) if with_tone else None,
            _rows_of(hashes) if framable else None,
        )

    def __len__(self) -> int:
        return len(self.phash)

    def take(self, rows: np.ndarray) -> HashVectors:
        """The vectors of `rows` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        indices = np.flatnonzero(rows) if rows.dtype == bool else rows
        tone, images = self.tone, self.images
        return HashVectors(
            self.phash[indices],
            self.dhash_edge[indices],
            self.hsv_hist[indices],
            None if tone is None else (lambda picked: tone(indices[picked])),
            None if images is None else (lambda picked: images(indices[picked])),
        )


def _rows_of(images: Sequence[ImageHashes]) -> Callable[[np.ndarray], list[ImageHashes]]:
    return lambda rows: [images[int(r)] for r in rows]


def within_thresholds(
    t: DedupThresholds, phash_distance: np.ndarray, edge_distance: Distances, hsv_chi2: Distances
) -> np.ndarray:
    """(n,) bool over n pairs: all three distances within the thresholds `t`.

    The pHash distances are given for every pair, as an (n,) array; the other two signals may be functions, called
    only for the pairs every earlier signal accepted (cheapest first), so the chi-square of a pair whose hashes
    differ is never computed.
    """
    phash_distance = np.asarray(phash_distance)
    accepted = np.flatnonzero(phash_distance <= t.phash_max_distance)
    for distances, limit in ((edge_distance, t.dhash_edge_max_distance), (hsv_chi2, t.hsv_chi2_max)):
        if accepted.size:
            values = distances(accepted) if callable(distances) else np.asarray(distances)[accepted]
            accepted = accepted[values <= limit]
    duplicate = np.zeros(len(phash_distance), dtype=bool)
    duplicate[accepted] = True
    return duplicate


def colour_distances(chi2: np.ndarray, tone_residual: Distances | None, t: DedupThresholds) -> np.ndarray:
    """The colour signal of pairs: the histograms' chi-square, or 0 where the tone rescue holds (the chi-square within
    `t.tone_chi2_max` and the tone residual, gateway.hashing.tone, within `t.tone_residual_max`): those pictures
    differ only by a global tone change. `tone_residual`: per pair, or a function of pair positions (called only
    for the pairs the rescue could change); None (no tone thumbnails) or the rescue off: the chi-square alone."""
    chi2 = np.asarray(chi2, dtype=np.float64)
    rescued, _ = _tone_rescued(chi2, tone_residual, t)
    if not rescued.size:
        return chi2
    colour = chi2.copy()
    colour[rescued] = 0.0
    return colour


def _tone_rescued(
    chi2: np.ndarray, tone_residual: Distances | None, t: DedupThresholds
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, their tone residuals) of the pairs the tone rescue turns into a colour agreement."""
    none = np.zeros(0, dtype=np.int64), np.zeros(0)
    if tone_residual is None:
        return none
    rows = np.flatnonzero(_in_tone_band(chi2, t))
    if not rows.size:
        return none
    residual = tone_residual(rows) if callable(tone_residual) else np.asarray(tone_residual)[rows]
    within = residual <= t.tone_residual_max
    return rows[within], residual[within]


def _in_tone_band(chi2: np.ndarray | float, t: DedupThresholds) -> np.ndarray | bool:
    """Where the tone rescue could turn a colour disagreement into agreement (its residual decides): the rescue on,
    and the chi-square past `hsv_chi2_max` but within `tone_chi2_max`."""
    return (t.tone_residual_max > 0) & (chi2 > t.hsv_chi2_max) & (chi2 <= t.tone_chi2_max)


def _pair_tone(v: HashVectors, i: np.ndarray, j: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """Tone residuals of the pairs (i[k], j[k]) at positions k, computed on demand; None without tone thumbnails."""
    tone = v.tone
    if tone is None:
        return None
    return lambda k: tone_residuals(tone(i[k]), tone(j[k]))


def verify_pairs(
    v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds, framing_budget: int | None = None
) -> np.ndarray:
    """Bool per pair (i[k], j[k]) of images of `v`: the duplicate rule, then the framing rescue for the pairs it
    rejects (where `v` has the images and `t` the rescue on; at most `framing_budget` pairs searched, None: all)."""
    tone = _pair_tone(v, i, j)
    duplicate = within_thresholds(
        t,
        hamming(v.phash[i], v.phash[j]),
        lambda k: hamming(v.dhash_edge[i[k]], v.dhash_edge[j[k]]),
        lambda k: colour_distances(chi2_pairs(v.hsv_hist, i[k], j[k]), None if tone is None else _at(tone, k), t),
    )
    rejected = np.flatnonzero(~duplicate)
    if rejected.size and _framing_on(v, t):
        phash_distance, edge_distance, chi2, residual = framed_signals(v, i[rejected], j[rejected], t, framing_budget)
        duplicate[rejected] = within_thresholds(t, phash_distance, edge_distance, colour_distances(chi2, residual, t))
    return duplicate


def _at(distances: Callable[[np.ndarray], np.ndarray], k: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`distances` of the pairs at positions k[rows]: positions within a subset, mapped back."""
    return lambda rows: distances(k[rows])


def _framing_on(v: HashVectors, t: DedupThresholds) -> bool:
    return v.images is not None and t.framing_min_share > 0


def framed_signals(
    v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds, budget: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The framing rescue's signals per pair (i[k], j[k]) (gateway.hashing.framing): pHash and dHash-edge distances,
    chi-square and tone residual between the interiors of the smaller picture and of the window it fills in the larger
    one (gateway.hashing.framing.interior_thumbnail), each resampled to a thumbnail and hashed as any image is. All
    inf for a pair with no such window; later signals stay inf once an earlier one fails `t` (cheapest first, as
    `within_thresholds`), the residual unless the tone rescue could use it.

    Only pairs whose middles agree in colour (CENTRE_CHI2_MAX) are searched, closest first, and at most `budget` of
    them (None: all): what bounds the rescue's cost on one request."""
    i, j = np.asarray(i), np.asarray(j)
    signals = np.full((4, len(i)), np.inf)
    if not len(i):
        return signals[0], signals[1], signals[2], signals[3]
    rows, positions = np.unique(np.concatenate([i, j]), return_inverse=True)
    images = v.images(rows)
    centre = chi2_pairs(np.stack([image.centre for image in images]), positions[: len(i)], positions[len(i) :])
    order = np.argsort(centre, kind="stable")
    order = order[centre[order] <= CENTRE_CHI2_MAX][:budget]
    pairs = [(images[positions[k]], images[positions[len(i) + k]]) for k in order]
    found_windows = best_windows([(x.pyramid, x.size, y.pyramid, y.size) for x, y in pairs], t.framing_min_share)
    for k, (x, y), found in zip(order, pairs, found_windows):
        if found is None:
            continue
        window, x_is_large = found
        large, small = (x, y) if x_is_large else (y, x)
        framed, small = FramedHashes(interior_thumbnail(large.thumb, window)), small.interior
        signals[0, k] = (framed.phash ^ small.phash).bit_count()
        signals[1, k] = (framed.dhash_edge ^ small.dhash_edge).bit_count()
        if signals[0, k] > t.phash_max_distance or signals[1, k] > t.dhash_edge_max_distance:
            continue
        signals[2, k] = chi2_distance(framed.hsv_hist, small.hsv_hist)
        if _in_tone_band(signals[2, k], t):
            signals[3, k] = tone_residuals(framed.tone[None], small.tone[None])[0]
    return signals[0], signals[1], signals[2], signals[3]


def _closeness(
    phash_distance: np.ndarray,
    edge_distance: np.ndarray,
    chi2: np.ndarray,
    residual: Distances | None,
    t: DedupThresholds,
) -> np.ndarray:
    """The largest share of its threshold that any of the three signals uses (the colour one: its tone residual's
    share of `tone_residual_max` where the tone rescue holds)."""
    chi2 = np.asarray(chi2, dtype=np.float64)
    colour = chi2 / max(t.hsv_chi2_max, 1e-9)
    rescued, rescued_residual = _tone_rescued(chi2, residual, t)
    colour[rescued] = rescued_residual / max(t.tone_residual_max, 1e-9)
    shares = (
        np.asarray(phash_distance, dtype=np.float64) / max(t.phash_max_distance, 1),
        np.asarray(edge_distance, dtype=np.float64) / max(t.dhash_edge_max_distance, 1),
        colour,
    )
    return np.max(np.stack(shares), axis=0)


def rule_closeness(v: HashVectors, i: np.ndarray, j: np.ndarray, t: DedupThresholds) -> np.ndarray:
    """Float per pair (i[k], j[k]) of images of `v`: how far apart the two are inside the duplicate rule, as the
    largest share of its threshold that any of the three distances uses (<= 1 for a duplicate pair, 0 for identical
    hashes; a pair that agrees in colour by the tone rescue uses its tone residual's share of `tone_residual_max`; a
    pair the framing rescue accepts, its window's signals). Which of several duplicates an image is nearest to."""
    i, j = np.asarray(i), np.asarray(j)
    closeness = _closeness(
        hamming(v.phash[i], v.phash[j]),
        hamming(v.dhash_edge[i], v.dhash_edge[j]),
        chi2_pairs(v.hsv_hist, i, j),
        _pair_tone(v, i, j),
        t,
    )
    outside = np.flatnonzero(closeness > 1)
    if outside.size and _framing_on(v, t):
        framed = _closeness(*framed_signals(v, i[outside], j[outside], t), t)
        closeness[outside] = np.minimum(closeness[outside], framed)
    return closeness


def duplicate_matrix(v: HashVectors, t: DedupThresholds, groups: np.ndarray | None = None) -> np.ndarray:
    """(n, n) bool, symmetric, diagonal True: the duplicate rule for every pair of one product's images; with
    `groups` (one label per image), only for pairs within a group (the others stay False, never computed). The
    framing rescue searches at most MAX_FRAMED_PAIRS of the pairs (gateway.hashing.framing)."""
    n = len(v)
    i, j = np.triu_indices(n, 1)
    if groups is not None:
        groups = np.asarray(groups)
        same = groups[i] == groups[j]
        i, j = i[same], j[same]
    duplicate = verify_pairs(v, i, j, t, MAX_FRAMED_PAIRS)
    matrix = np.eye(n, dtype=bool)
    matrix[i[duplicate], j[duplicate]] = True
    matrix[j[duplicate], i[duplicate]] = True
    return matrix
