"""Own-variant check: which accepted images agree with the product's consensus colour, so that a front shot of another
colourway (a supplier's mix-up) never becomes the hero. Never a rejection: a swatch or a colour chart is legitimate,
it is only ordered after the consistent images of its type.

Consensus: the weighted medoid of the accepted images under the colour-histogram chi-square (the tone-normalised
foreground histogram duplicate detection already computes), each image weighted by its supplier's priority. A medoid
is a real image, so it stays inside the product's own colour as long as the outliers carry less than half the
weight (2 of 5 images, say), unlike a mean histogram that an outlier drags toward itself. The backbone embedding is
not used: on the development colourways it tells views apart, not colours (other colourways of the same view are
closer in it than the back and front of one product; BENCHMARKS.md "Own variant as hero").

When the request names the product's colour (`colour` of /v1/select, reduced to basic terms by contract.colours),
each image's share of those terms (preprocessing.colour.colour_name_shares of its thumbnail) also weighs in the
consensus, and an image showing much less of the named colour than the product's best image is inconsistent however
close its histogram: the caller knows which colourway the page is for, the histogram only which one is commonest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from contract.categories import VariantThresholds
from contract.colours import BASIC_COLOURS
from gateway.hashing import chi2_pairs

if TYPE_CHECKING:  # analysis.py holds VariantCheck in each Verdict
    from gateway.decisions.analysis import ImageAnalysis


# Ordering compares distances to the consensus in steps of this chi-square: re-exports of one picture differ by less
# (duplicate detection's hsv_chi2_max is 0.02), so two shots of the product's own colour tie and the usual order
# (resolution, sharpness) picks between them, while another colourway's shot (0.1 and more) sorts after.
VARIANT_DISTANCE_STEP = 0.02
# With a colour named (chosen on the development catalog's colourways, checked on other shops': BENCHMARKS.md "Third
# pass: the product's colour named"):
# - an image's consensus weight is its supplier weight times (COLOUR_WEIGHT_FLOOR + its share of the named colour),
#   so an image without the colour still counts a little (a colour chart, a mis-named shade);
COLOUR_WEIGHT_FLOOR = 0.05
# - an image whose share is below MIN_SHARE_OF_BEST times the best image's is inconsistent, unless its histogram is
#   within NAMED_MIN_DISTANCE of the consensus (shots of one colour differ by less, and a shade at the edge of the
#   name's range can be in one shot and not the next);
MIN_SHARE_OF_BEST = 0.1
NAMED_MIN_DISTANCE = 0.1
# - a product under min_images gets a verdict when an image shows under SINGLED_OUT_BELOW of the best share (two
#   shots of one colour differ by a few points, which must not pick one);
SINGLED_OUT_BELOW = 0.8
# - a name no image shows on MIN_BEST_SHARE of its foreground is not used at all (a tag or a trim under a name that
#   fits nothing else must not flag the product's own shots).
MIN_BEST_SHARE = 0.05


@dataclass(frozen=True)
class VariantCheck:
    """An accepted image against the product's consensus: consistent when distance <= threshold."""

    consistent: bool
    distance: float  # colour-histogram chi-square to the consensus image
    threshold: float
    colour_share: float | None = None  # share of the named colour in the image's foreground; None: none named


def closeness_key(check: VariantCheck | None) -> tuple[bool, int]:
    """Sort key among images of one type: consistent images first, each group closest to the consensus first, in
    steps of VARIANT_DISTANCE_STEP (closer than that ties, and the usual order decides); unchecked images count as
    consistent and closest."""
    if check is None:
        return False, 0
    return not check.consistent, int(check.distance // VARIANT_DISTANCE_STEP)


def inconsistency_key(check: VariantCheck | None) -> tuple[bool, float]:
    """Sort key among images of different types: consistent (and unchecked) images first, in their order; then the
    inconsistent ones, closest first."""
    if check is None or check.consistent:
        return False, 0.0
    return True, check.distance


def supplier_weights(priorities: list[int | None]) -> np.ndarray:
    """Consensus weight per image: 1 / (1 + rank of its supplier priority among those present), lower priority
    values preferred and images without one ranked last; all 1 when no image carries a priority."""
    ranks = {p: r for r, p in enumerate(sorted({p for p in priorities if p is not None}))}
    last = len(ranks)
    return np.array([1.0 / (1 + (last if p is None else ranks[p])) for p in priorities])


def histogram_distances(images: list[ImageAnalysis]) -> np.ndarray:
    """(n, n) colour-histogram chi-square between the images (each must carry hashes)."""
    n = len(images)
    hist = np.stack([a.hashes.hsv_hist for a in images])
    i, j = np.triu_indices(n, 1)
    distance = np.zeros((n, n))
    distance[i, j] = distance[j, i] = chi2_pairs(hist, i, j)
    return distance


def named_colour_shares(images: list[ImageAnalysis], colours: frozenset[str]) -> np.ndarray | None:
    """Each image's share of the named basic colours (their sum; NaN for an image without a thumbnail to name: it
    neither weighs by colour nor is judged by it), or None when no colour is named or no image shows it on
    MIN_BEST_SHARE of its foreground (a name that fits nothing, or only a tag or a trim, decides nothing)."""
    if not colours:
        return None
    terms = [BASIC_COLOURS.index(c) for c in sorted(colours)]
    shares = np.array(
        [np.nan if (named := a.hashes.colour_names) is None else float(named[terms].sum()) for a in images]
    )
    return shares if np.any(shares >= MIN_BEST_SHARE) else None  # NaN compares False


def singles_out(colour_shares: np.ndarray | None) -> bool:
    """Whether the named colour tells the images apart on its own: some image shows under SINGLED_OUT_BELOW of the
    best image's share."""
    if colour_shares is None:
        return False
    return bool(np.any(colour_shares < SINGLED_OUT_BELOW * np.nanmax(colour_shares)))


def variant_checks(
    images: list[ImageAnalysis], t: VariantThresholds | None, colours: frozenset[str] = frozenset()
) -> dict[int, VariantCheck]:
    """VariantCheck by id() of each accepted image with a colour histogram; empty when the check is off (`t` None),
    when fewer than t.min_images images take part and neither supplier priorities nor the named `colours` single
    one out, or when the consensus is ambiguous (two images far apart tie as medoid)."""
    taking_part = [a for a in images if a.hashes is not None]
    return consensus_checks(taking_part, t, histogram_distances, named_colour_shares(taking_part, colours))


def consensus_checks(
    images: list[ImageAnalysis],
    t: VariantThresholds | None,
    distances: Callable[[list[ImageAnalysis]], np.ndarray],
    colour_shares: np.ndarray | None = None,
) -> dict[int, VariantCheck]:
    """variant_checks' rule under any pairwise distance (`distances` of the taking-part images, an (n, n) matrix):
    the weighted medoid and each image's distance to it, and with `colour_shares` (named_colour_shares) the named
    colour's part in both. evaluation.variant_descriptors compares descriptors with it."""
    if t is None or len(images) < 2:
        return {}
    by_priority = supplier_weights([a.supplier_priority for a in images])
    weights, shows_colour = by_priority, np.ones(len(images), dtype=bool)
    if colour_shares is not None:
        best_share = np.nanmax(colour_shares)
        known = np.where(np.isnan(colour_shares), best_share, colour_shares)  # no thumbnail: as if it showed it
        shows_colour = known >= MIN_SHARE_OF_BEST * best_share
        weights = by_priority * (COLOUR_WEIGHT_FLOOR + known)
    # Fewer images than a majority needs: only differing priorities or an image without the named colour say which
    # is the product's (two shots of one colour differ in share by a few points, which must not pick one).
    if len(images) < t.min_images and np.ptp(by_priority) == 0 and not singles_out(colour_shares):
        return {}
    distance = distances(images)
    cost = distance @ weights  # weighted sum of distances from each candidate consensus to every image
    best = np.flatnonzero(np.isclose(cost, cost.min()))
    if np.any(distance[np.ix_(best, best)] > t.max_distance):
        return {}
    to_consensus = distance[best[0]]
    judged = shows_colour | (to_consensus <= NAMED_MIN_DISTANCE)  # all True without a named colour
    shares = np.full(len(images), np.nan) if colour_shares is None else colour_shares
    return {
        id(a): VariantCheck(
            bool(d <= t.max_distance and ok), float(d), t.max_distance, None if np.isnan(share) else float(share)
        )
        for a, d, ok, share in zip(images, to_consensus, judged, shares)
    }
