"""imgsel gateway: HTTP API, Triton client and the pure image-selection decision logic."""

import os

# One BLAS thread, set before numpy loads OpenBLAS: the gateway's matrix products are tiny (the category vote is an
# 11 x 1280 product, ~7 us), and OpenBLAS's worker threads busy-wait after each call. Measured under /v1/select load
# (loadtest.profile_stack, 4 clients): gateway CPU 11.3 -> 4.3 ms an image, the stack 68 -> 85.5 images/s. An
# operator's own OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
