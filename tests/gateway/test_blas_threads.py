"""The gateway process runs numpy's BLAS on one thread (gateway/__init__.py): checked in a fresh interpreter, where
importing the gateway comes before numpy, as under uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import gateway.app  # noqa: F401  (what uvicorn imports)
import numpy
from numpy.core._multiarray_umath import __cpu_features__  # noqa: F401  (numpy loaded)
import ctypes, glob, os
print(os.environ["OPENBLAS_NUM_THREADS"])
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), "..", "numpy.libs", "libopenblas*"))
if libs:
    blas = ctypes.CDLL(libs[0])
    get = getattr(blas, "openblas_get_num_threads64_", None) or getattr(blas, "openblas_get_num_threads", None)
    print(get() if get else "unknown")
else:
    print("unknown")
"""


def run_probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_gateway_sets_one_blas_thread_unless_the_operator_chose():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    setting, threads = run_probe(env)
    assert setting == "1" and threads in ("1", "unknown")  # unknown: a numpy without its own OpenBLAS
    chosen = run_probe({**env, "OPENBLAS_NUM_THREADS": "2"})
    assert chosen[0] == "2" and chosen[1] in ("2", "unknown")
