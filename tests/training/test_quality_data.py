"""Synthetic-data building blocks: label rules and the motion-blur kernel."""

from __future__ import annotations

import math

from training import quality_data as qd


def test_label_rules_have_an_unlabelled_band():
    assert qd.blur_label(qd.BLUR_POSITIVE_SIGMA) == 1.0 and qd.blur_label(qd.BLUR_NEGATIVE_SIGMA) == 0.0
    assert qd.blur_label((qd.BLUR_POSITIVE_SIGMA + qd.BLUR_NEGATIVE_SIGMA) / 2) is None
    assert qd.small_object_label(0.05) == 1.0 and qd.small_object_label(0.2) == 0.0
    assert qd.small_object_label(0.1) is None
    assert qd.working_scale((2048, 1024)) == 0.25 and qd.working_scale((300, 200)) == 1.0


def test_motion_blur_kernel_is_a_normalised_line():
    kernel = qd.line_kernel(9.0, 0.0)
    assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-9)
    centre = kernel.shape[0] // 2
    assert kernel[centre].sum() > 0.99  # horizontal: all weight on the middle row
