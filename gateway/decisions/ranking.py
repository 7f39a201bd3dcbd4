"""Which of two images is better: the sort keys shared by de-duplication (the cluster's representative) and page
ordering."""

from __future__ import annotations

from gateway.decisions.analysis import ImageAnalysis

# Stand-in blur score for an image whose blur check did not run: mid-scale, i.e. no evidence either way. Accepted
# images that were measured score below blur_max (0.5 by default), so a measured sharp image outranks an unmeasured
# one of the same size, which is the safer bet.
NEUTRAL_BLUR_SCORE = 0.5


def _blur_or_neutral(a: ImageAnalysis) -> float:
    return a.scores.get("blur", NEUTRAL_BLUR_SCORE)


def _supplier_rank(a: ImageAnalysis) -> tuple[bool, int]:
    return a.supplier_priority is None, a.supplier_priority or 0


def representative_key(a: ImageAnalysis) -> tuple[int, float, tuple[bool, int], int]:
    """Sort key, best first: largest area, then sharpest, then preferred supplier (None last), then input order."""
    return -a.width * a.height, _blur_or_neutral(a), _supplier_rank(a), a.index


# Accepted images whose blur score is under this are all sharp: differences between them are the measure's noise
# (0.001 against 0.02 on two sharp studio photos), not the picture's, so there the suppliers' own order decides (a
# shop's main picture first). Sharpest-first led with the shop's main picture on 0.42-0.52 of other shops' product
# pages; this rule and no colour-distance steps without types, 0.93-0.97 (BENCHMARKS.md "whole product pages").
SHARP_BLUR_SCORE = 0.1


def sharpness_key(a: ImageAnalysis) -> tuple:
    """Sort key, best first, for a page without known types: the sharp images (blur score under SHARP_BLUR_SCORE)
    by preferred supplier, then input order; then the others sharpest first, then largest area, then preferred
    supplier, then input order (an unmeasured image counts NEUTRAL_BLUR_SCORE)."""
    blur = _blur_or_neutral(a)
    if blur < SHARP_BLUR_SCORE:
        return 0, 0.0, 0, _supplier_rank(a), a.index
    return 1, blur, -a.width * a.height, _supplier_rank(a), a.index
