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


def sharpness_key(a: ImageAnalysis) -> tuple[float, int, tuple[bool, int], int]:
    """Sort key, best first: sharpest, then largest area, then preferred supplier, then input order."""
    return _blur_or_neutral(a), -a.width * a.height, _supplier_rank(a), a.index
