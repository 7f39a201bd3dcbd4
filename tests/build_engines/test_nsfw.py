"""build_engines.nsfw: the wrapped open_nsfw graph reads PIXELS exactly as open_nsfw's own input would be made from the
same picture, maps its operating point to 0.5, and points the right way on real pictures (benign photos score low;
the development data has no adult content, so the positive side is the model's own [sfw, nsfw] column order, checked
here on benign photos where sfw must be the high column)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from build_engines.nsfw import NSFW_OUTPUT, open_nsfw_path, served_score, write_nsfw_onnx
from preprocessing.pipeline import MEAN, STD
from preprocessing.runner import PreprocessRunner
from tests.helpers import encode, product_photo

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory) -> ort.InferenceSession:
    return session(write_nsfw_onnx(tmp_path_factory.mktemp("nsfw") / "nsfw.onnx"))


def pixels_of(files: list[bytes]) -> np.ndarray:
    return PreprocessRunner(max_batch=16).run([np.frombuffer(f, np.uint8) for f in files])["PIXELS"]


def open_nsfw_input(pixels: np.ndarray) -> np.ndarray:
    """What open_nsfw's own preprocessing gives for the served 224 copy: 0..255 BGR minus its mean, NHWC."""
    rgb = pixels * np.array(STD, np.float32).reshape(1, 3, 1, 1) + np.array(MEAN, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(rgb[:, ::-1].transpose(0, 2, 3, 1) - np.array([104, 117, 123], np.float32))


def test_the_wrapped_graph_is_open_nsfw_on_the_served_pixels(wrapped):
    pixels = pixels_of([encode(product_photo(500, (30 * k, 90, 200), seed=k)) for k in range(5)])
    (got,) = wrapped.run([NSFW_OUTPUT], {"PIXELS": pixels})
    sfw_nsfw = session(open_nsfw_path()).run(None, {"input:0": open_nsfw_input(pixels)})[0]
    np.testing.assert_allclose(sfw_nsfw.sum(axis=1), 1.0, atol=1e-5)
    assert (sfw_nsfw[:, 0] > 0.9).all(), "benign product photos: the first column (sfw) must be the high one"
    np.testing.assert_allclose(got[:, 0], served_score(sfw_nsfw[:, 1]), rtol=1e-4, atol=1e-7)
    assert got.shape == (5, 1) and (got < 0.5).all()


def test_the_operating_point_scores_half_and_the_order_is_kept():
    p = np.array([0.01, 0.2, 0.8, 0.95])
    odds_moved = [0.01 * 0.2 / (0.01 * 0.2 + 0.99 * 0.8), 1 / 17, 0.5, 19 / 23]  # p (1 - t) / (p (1 - t) + (1 - p) t)
    np.testing.assert_allclose(served_score(p, 0.8), odds_moved, rtol=1e-9)
    assert np.all(np.diff(served_score(p, 0.8)) > 0)
    with pytest.raises(ValueError):
        write_nsfw_onnx(Path("/nonexistent/x.onnx"), operating_point=1.0)


@pytest.mark.skipif(not (DATA / "catalog").is_dir(), reason="../shared/data not present")
def test_real_catalog_photos_of_bras_tanks_and_shorts_score_low(wrapped):
    import csv

    with open(DATA / "catalog" / "manifest.csv", newline="") as manifest:
        rows = [r for r in csv.DictReader(manifest) if r["category"] in ("wb", "wt", "ws")][:24]
    files = [(DATA / "catalog" / r["file"]).read_bytes() for r in rows]
    (scores,) = wrapped.run([NSFW_OUTPUT], {"PIXELS": pixels_of(files)})
    assert (scores < 0.5).mean() >= 0.95, scores[:, 0]
