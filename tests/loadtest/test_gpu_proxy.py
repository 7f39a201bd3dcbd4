"""The GPU proxy (loadtest.gpu_proxy) on this machine's CPU: its PyTorch copies of the preprocessing match the served
DALI pipeline's, and a short run through its batcher and host pool answers every product. What it measures on a GPU
is for BENCHMARKS.md, not for a test."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("nvidia.dali")

from loadtest import gpu_proxy  # noqa: E402
from preprocessing.perceptual import hash_features  # noqa: E402
from preprocessing.runner import PreprocessRunner  # noqa: E402
from tests.helpers import encode, product_photo  # noqa: E402


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_proxy")
    gpu_proxy.prepare(out, images=8)
    return out


def test_the_proxy_preprocesses_as_the_served_pipeline_does(prepared):
    files = [encode(product_photo(400 + 40 * i, (30 * i, 90, 200 - 20 * i), seed=i)) for i in range(4)]
    files.append(encode(product_photo(300, (10, 120, 60), seed=9).resize((300, 180))))  # another aspect, upscaled
    path = gpu_proxy.GpuPath(prepared, "cpu")
    proxy = path.preprocess(path.decode(files))
    served = PreprocessRunner(max_batch=8, threads=1).run([np.frombuffer(f, np.uint8) for f in files])
    # PIXELS: PyTorch's antialiased bilinear is DALI's triangular filter; rounding puts a few values one level apart
    assert np.abs(proxy["PIXELS"].numpy() - served["PIXELS"]).mean() < 0.01
    thumbs = np.abs(proxy["THUMB"].astype(int) - served["THUMB"].astype(int))
    assert thumbs.mean() < 0.5
    for k in range(len(files)):
        assert bin(hash_features(proxy["THUMB"][k])[0] ^ int(served["PHASH"][k][0])).count("1") <= 2
    embeddings = path.embed(proxy["PIXELS"])
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    height, width = proxy["LAPLACIAN_SIZE"][-1]
    assert (height, width) == (180, 300)  # the grey copy is never upscaled
    assert not proxy["LAPLACIAN"][-1][height:].any() and not proxy["LAPLACIAN"][-1][:, width:].any()


def test_a_short_run_answers_every_product(prepared):
    report = gpu_proxy.run(
        prepared, seconds=1.0, clients=[2], instances=1, max_batch=16, workers=1, gpu_only_batches=(8,)
    )
    (served,) = report["served"]
    assert served["failures"] == 0 and served["products"] > 0
    assert served["p99_ms"] >= served["p50_ms"] > 0
    assert report["host_cpu_ms_per_image"] > 0 and report["heads_cpu_ms_per_image_on_host"] > 0
    assert report["device"].startswith("cpu")
    assert "| 2 |" in gpu_proxy.markdown(report)
