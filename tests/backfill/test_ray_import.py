"""The pinned Ray Data imports beside the project's numpy 1.26 (pyarrow 25: pyarrow 26 refuses numpy < 2)."""

import subprocess
import sys


def test_ray_data_imports_with_the_pinned_numpy_and_pyarrow():
    code = "import numpy, pyarrow, ray, ray.data; print(ray.__version__, numpy.__version__, pyarrow.__version__)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert found.stdout.split() == ["2.60.0", "1.26.4", "25.0.1"]
