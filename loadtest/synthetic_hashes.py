"""Synthetic hash vectors of a product catalog, for the clustering benchmark (loadtest.cluster_scale).

`synthetic_catalog` shapes them after the 400 studio photos of ../shared/data/catalog as the production hashes see
them (content-box pHash and edge dHash of the 128 px thumbnail Triton returns, foreground colour histogram;
gateway.hashing), which it does not need or read:

- pHash: balanced like a real one (the DC bit always set, 31 of the other 63 set: pHash thresholds at the median,
  so real distances are even). Images share "compositions" (centred product on white, folded, worn...): bits are
  the top 31 of (per-bit global bias + composition profile + per-image noise). The scales were tuned so random
  pairs behave like the real catalog's pairs of different styles (measured: mean distance 30, 0.27% within 10 bits,
  0.52% within 14, 0.30% sharing a 16-bit band exactly).
- edge dHash: the same construction without balancing (real mean ~30 ones, random-pair mean distance ~28).
- colour histogram (HSV_HIST_BINS bins, foreground only): see `_histograms`.
- Styles come in 1-4 colourways (same pose: pHash within 0-6 bits, different colour: far in chi-square): the hard
  negatives the histogram must reject.
- Planted duplicates (a share of the images, default 15%, groups of 2-4): copies of an original made by
  re-encoding/resizing, brightness change or a 1-4% crop, with pHash/dHash distances drawn from the distributions
  measured on real catalog pairs for exactly those edits (below) and a histogram perturbed to a chi-square of about
  COPY_CHI2_MEDIAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.hashing import HASH_BITS, HSV_HIST_BINS, HUE_BINS, SAT_BINS, TONE_BINS, HashVectors, chi2_rows

# Distance histograms {distance: count} of (original, edited) pairs, measured with the production hashes (DALI
# preprocess -> gateway.hashing.compute_hashes) on the labelled duplicate pairs of ../shared/data/catalog made by
# `python -m evaluation.dedup generate` (seed 0), single-edit pairs only: `reencode` = its resize and jpeg kinds
# (100 + 103 pairs), `brightness` (98), `crop` (91: 1-4% off the borders).
EDIT_WEIGHTS = {"reencode": 0.4, "brightness": 0.3, "crop": 0.3}
PHASH_EDIT_DISTANCES = {
    "reencode": {0: 165, 2: 29, 4: 3, 6: 4, 8: 1, 10: 1, 22: 1, 26: 1},
    "brightness": {0: 27, 2: 32, 4: 16, 6: 8, 8: 2, 10: 1, 12: 3, 14: 4, 16: 1, 18: 1, 26: 1, 28: 2},
    "crop": {0: 12, 2: 21, 4: 20, 6: 15, 8: 9, 10: 5, 12: 5, 14: 2, 16: 1, 26: 1},
}
DHASH_EDIT_DISTANCES = {
    "reencode": {0: 119, 1: 51, 2: 19, 3: 3, 4: 4, 5: 3, 6: 2, 9: 1, 10: 1, 18: 1, 20: 1},
    "brightness": {0: 9, 1: 18, 2: 24, 3: 16, 4: 8, 5: 6, 6: 4, 7: 6, 12: 1, 16: 1, 17: 1, 20: 1, 24: 1, 26: 1, 34: 1},
    "crop": {0: 8, 1: 10, 2: 16, 3: 11, 4: 11, 5: 10, 6: 5, 7: 7, 8: 8, 9: 1, 11: 1, 13: 1, 14: 1, 30: 1},
}
# Median chi-square between an original and an edited copy on the same pairs: resize/jpeg 0.0001-0.0003,
# crop 0.001, brightness 0.002.
COPY_CHI2_MEDIAN = 0.001
# Shared photo set-ups; fixed, not growing with n: the share of look-alike pairs stays constant (conservative).
COMPOSITIONS = 40


@dataclass
class Synthetic:
    vectors: HashVectors
    rank: np.ndarray  # representative order (lower is better), as the gateway's representative_key would give
    planted_groups: int
    origin: np.ndarray  # index of the original each image was made from (itself for an original)


def _top_bits(scores: np.ndarray, ones: int | None) -> np.ndarray:
    """(n, 64) scores -> uint64 hashes: the `ones` highest-scoring bits set (balanced), or the positive ones."""
    if ones is None:
        bits = scores > 0
    else:
        bits = np.zeros(scores.shape, dtype=bool)
        top = np.argpartition(-scores, ones - 1, axis=1)[:, :ones]
        np.put_along_axis(bits, top, True, axis=1)
    weights = np.uint64(1) << np.arange(HASH_BITS - 1, -1, -1, dtype=np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def _flip_balanced(rng: np.random.Generator, hashes: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Flip distance/2 set and distance/2 clear bits of each pHash (DC bit kept): the result stays balanced."""
    out = hashes.copy()
    bits = ((hashes[:, None] >> np.arange(HASH_BITS - 1, -1, -1, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    bits[:, 0] = False  # never flip the DC bit: exclude it from both draws
    noise = rng.random(bits.shape)
    for row in np.flatnonzero(distances):
        half = int(distances[row]) // 2
        ones = np.flatnonzero(bits[row])
        zeros = np.flatnonzero(~bits[row])[1:]  # position 0 is the DC bit
        chosen = np.concatenate(
            [ones[np.argsort(noise[row, ones])[:half]], zeros[np.argsort(noise[row, zeros])[:half]]]
        )
        out[row] ^= (np.uint64(1) << (HASH_BITS - 1 - chosen).astype(np.uint64)).sum(dtype=np.uint64)
    return out


def _flip_any(rng: np.random.Generator, hashes: np.ndarray, distances: np.ndarray) -> np.ndarray:
    keys = rng.random((len(hashes), HASH_BITS))
    positions = np.argsort(keys, axis=1)
    masks = np.arange(HASH_BITS)[None, :] < distances[:, None]
    flips = np.where(masks, np.uint64(1) << positions.astype(np.uint64), np.uint64(0)).sum(axis=1, dtype=np.uint64)
    return hashes ^ flips


def _draw(rng: np.random.Generator, histogram: dict[int, int], size: int) -> np.ndarray:
    values = np.array(list(histogram), dtype=np.int64)
    weights = np.array(list(histogram.values()), dtype=np.float64)
    return rng.choice(values, size=size, p=weights / weights.sum())


def _histograms(rng: np.random.Generator, hues: np.ndarray, achromatic: np.ndarray) -> np.ndarray:
    """(n,) product hue (0-HUE_BINS-1), (n,) bool -> (n, HSV_HIST_BINS) float32 foreground colour histograms.

    A coloured product: its hue's and a neighbouring hue's saturation bins, plus 10-40% of the mass in the achromatic
    tone bins (shadows, trims). A black/grey/white product (a third of a clothing catalog): the tone bins, plus up to
    10% of chromatic mass (skin, a print). Random pairs: median chi-square 0.79, 0.01% within 0.015 (the real
    catalog: 0.53 and 0.045%), so accidental pairs are a little rarer than in real data."""
    n = len(hues)
    hist = np.zeros((n, HSV_HIST_BINS), dtype=np.float64)
    rows = np.arange(n)[:, None]
    sat_bins = np.arange(SAT_BINS)[None, :]
    chroma = TONE_BINS + hues[:, None] * SAT_BINS + sat_bins
    hist[rows, chroma] = rng.dirichlet(np.full(SAT_BINS, 0.5), size=n)
    second = (hues + rng.choice([-1, 1], size=n)) % HUE_BINS  # a neighbouring hue: shading, print
    hist[rows, TONE_BINS + second[:, None] * SAT_BINS + sat_bins] += 0.3 * rng.dirichlet(np.full(SAT_BINS, 0.5), size=n)
    hist /= hist.sum(axis=1, keepdims=True)
    tone_share = np.where(achromatic, rng.uniform(0.9, 1.0, size=n), rng.uniform(0.1, 0.4, size=n))
    hist *= (1 - tone_share)[:, None]
    hist[:, :TONE_BINS] += tone_share[:, None] * rng.dirichlet(np.full(TONE_BINS, 0.4), size=n)
    return hist.astype(np.float32)


def _perturb(rng: np.random.Generator, hist: np.ndarray) -> np.ndarray:
    """Copies of histograms at a chi-square of about COPY_CHI2_MEDIAN (lognormal), as edited copies measure."""
    noise = hist * rng.lognormal(0, 1, hist.shape) + rng.dirichlet(np.full(HSV_HIST_BINS, 0.2), size=len(hist)) * 0.05
    noise /= noise.sum(axis=1, keepdims=True)
    full = chi2_rows(hist, noise)
    target = np.exp(rng.normal(np.log(COPY_CHI2_MEDIAN), 1.0, size=len(hist)))
    a = np.clip(np.sqrt(target / np.maximum(full, 1e-12)), 0, 1)[:, None]
    return ((1 - a) * hist + a * noise).astype(np.float32)


def synthetic_catalog(n: int, seed: int = 0, duplicate_share: float = 0.15) -> Synthetic:
    """n images: styles in 1-4 colourways, plus duplicate_share of planted copies, shuffled together."""
    rng = np.random.default_rng(seed)
    n_copies = int(n * duplicate_share)
    n_originals = n - n_copies
    phash, dhash, hist = _originals(rng, n_originals)
    copy_p, copy_d, copy_h, source, groups = _planted_copies(rng, phash, dhash, hist, n_copies)
    order = rng.permutation(n)  # shuffle originals and copies together
    vectors = HashVectors.of(
        np.concatenate([phash, copy_p])[order],
        np.concatenate([dhash, copy_d])[order],
        np.concatenate([hist, copy_h])[order],
    )
    origin = np.concatenate([np.arange(n_originals), source])[order]
    return Synthetic(vectors, rank=rng.permutation(n), planted_groups=groups, origin=origin)


def _originals(rng: np.random.Generator, n_originals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phash, dhash, hist) of the original images: styles -> colourways -> images (views); compositions shared by
    many styles."""
    bias_p, bias_d = rng.normal(0, 0.8, HASH_BITS), rng.normal(0, 0.8, HASH_BITS)
    bias_p[:16] *= 2.5  # the first band (lowest vertical frequencies) is the most predictable
    profile_p = rng.normal(0, 1.3, (COMPOSITIONS, HASH_BITS))
    profile_d = rng.normal(0, 2.5, (COMPOSITIONS, HASH_BITS))
    colourways = rng.integers(1, 5, size=n_originals)
    style_start = np.cumsum(colourways) - colourways
    n_views = int(np.searchsorted(style_start, n_originals))  # views needed to fill n_originals
    colourways = colourways[:n_views]
    view_of = np.repeat(np.arange(n_views), colourways)[:n_originals]
    composition = rng.integers(0, COMPOSITIONS, size=n_views)
    scores_p = bias_p + profile_p[composition] + rng.normal(0, 0.85, (n_views, HASH_BITS))
    scores_p[:, 0] = np.inf  # DC bit
    view_p = _top_bits(scores_p, ones=32)
    view_d = _top_bits(bias_d - 0.25 + profile_d[composition] + rng.normal(0, 1.0, (n_views, HASH_BITS)), ones=None)
    # Colourways: same pose, so close hashes; another colour, so a far histogram.
    phash = _flip_balanced(rng, view_p[view_of], rng.choice([0, 2, 4, 6], size=n_originals))
    dhash = _flip_any(rng, view_d[view_of], rng.integers(0, 7, size=n_originals))
    view_hue = rng.integers(0, HUE_BINS, size=n_views)
    colourway = np.arange(n_originals) - np.searchsorted(view_of, view_of)
    hue = (view_hue[view_of] + 4 * colourway) % HUE_BINS
    hist = _histograms(rng, hue, achromatic=rng.random(n_originals) < 1 / 3)
    return phash, dhash, hist


def _planted_copies(rng: np.random.Generator, phash: np.ndarray, dhash: np.ndarray, hist: np.ndarray, n_copies: int):
    """(copy phash, copy dhash, copy hist, original of each copy, number of groups): groups of 1-3 edited copies of
    one original, at distances drawn from the measured edit distributions."""
    group_sizes = []
    while sum(group_sizes) < n_copies:
        group_sizes.append(min(int(rng.choice([1, 1, 1, 2, 3])), n_copies - sum(group_sizes)))
    originals = rng.choice(len(phash), size=len(group_sizes), replace=False)
    source = np.repeat(originals, group_sizes)
    edit = rng.choice(list(EDIT_WEIGHTS), size=n_copies, p=list(EDIT_WEIGHTS.values()))
    p_dist, d_dist = np.zeros(n_copies, np.int64), np.zeros(n_copies, np.int64)
    for kind in EDIT_WEIGHTS:
        rows = np.flatnonzero(edit == kind)
        p_dist[rows] = _draw(rng, PHASH_EDIT_DISTANCES[kind], len(rows))
        d_dist[rows] = _draw(rng, DHASH_EDIT_DISTANCES[kind], len(rows))
    copy_p = _flip_balanced(rng, phash[source], p_dist)
    copy_d = _flip_any(rng, dhash[source], d_dist)
    copy_h = _perturb(rng, hist[source].astype(np.float64))
    return copy_p, copy_d, copy_h, source, len(group_sizes)
