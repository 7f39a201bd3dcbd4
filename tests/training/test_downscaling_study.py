"""The downscaling study's re-measure of the blur feature on another working copy (an explicit runner parameter, not
a patched module global)."""

from __future__ import annotations

import numpy as np

import preprocessing.pipeline as pipeline
from tests.helpers import encode, product_photo
from training.downscaling_study import laplacian_on_copy
from training.quality_samples import Spec


def test_blur_feature_at_another_side_leaves_the_served_one_alone(tmp_path):
    path = tmp_path / "large.jpg"
    path.write_bytes(encode(product_photo(1200, seed=4)))
    specs = [Spec("original:large", "original", str(path), "catalog:x", "test")]
    served = laplacian_on_copy(specs, pipeline.SERVED_BLUR_COPY)
    for other in (pipeline.BlurCopy(256, "nearest"), pipeline.BlurCopy(512, "antialiased")):
        measured = laplacian_on_copy(specs, other)
        assert measured[0] != served[0] and np.isfinite(measured).all()
    assert pipeline.SERVED_BLUR_COPY == pipeline.BlurCopy(512, "nearest")
    np.testing.assert_array_equal(laplacian_on_copy(specs, pipeline.SERVED_BLUR_COPY), served)
