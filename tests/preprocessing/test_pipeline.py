"""preprocessing.pipeline: the CPU graph's Laplacian (one 3x3 convolution) equals fn.laplacian(window_size=3)."""

from __future__ import annotations

import numpy as np

from preprocessing.pipeline import LAPLACIAN_KERNEL
from tests.helpers import blurred, encode, product_photo


def test_the_laplacian_kernel_equals_dali_laplacian_on_photos():
    from nvidia.dali import fn, pipeline_def, types

    pictures = [product_photo(700, seed=1), blurred(product_photo(640, seed=2)), product_photo(300, seed=3)]
    files = [np.frombuffer(encode(p.resize((p.width, p.height * 2 // 3))), np.uint8) for p in pictures]

    @pipeline_def(batch_size=len(files), num_threads=1, device_id=None, prefetch_queue_depth=1)
    def both():
        encoded = fn.external_source(name="E", dtype=types.UINT8, ndim=1)
        grey = fn.decoders.image(encoded, device="cpu", output_type=types.GRAY)
        kernel = fn.constant(fdata=[v for row in LAPLACIAN_KERNEL for v in row], shape=(3, 3), dtype=types.FLOAT)
        return fn.laplacian(grey, window_size=3, dtype=types.FLOAT), fn.filter(grey, kernel, dtype=types.FLOAT)

    pipe = both()
    pipe.build()
    pipe.feed_input("E", files)
    reference, filtered = pipe.run()
    for i in range(len(files)):
        expected = np.array(reference[i])
        assert expected.var() > 1.0  # a real picture, not a flat one
        np.testing.assert_array_equal(np.array(filtered[i]), expected)
