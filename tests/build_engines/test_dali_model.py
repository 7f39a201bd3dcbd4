"""The gpu profile's preprocessing (build_engines.dali_model) checked on the CPU: the served pipeline serialises without
a GPU; the same graph with the CPU decoder, followed by the generated `preprocess_features` model, returns what the
cpu profile's runner returns; a corrupt image fails its whole DALI run, and the gateway's per-image retry leaves it
the only failure. What needs a GPU (nvJPEG itself, the DALI backend inside Triton) is not run here."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tritonclient.utils import InferenceServerException

from build_engines.dali_model import (
    DALI_OUTPUTS,
    DALI_TEXT_OUTPUTS,
    FEATURES_INPUTS,
    FEATURES_MODEL,
    FEATURES_OUTPUTS,
    LAPLACIAN,
    LAPLACIAN_SIZE,
    serialize_pipeline,
    triton_pipeline,
    write_features_code,
)
from contract.tensors import IMAGE_BYTES, IMAGE_LENGTH, ORIG_SIZE, PIXELS, QUALITY_FEATURES, TEXT_IMAGE, THUMB, VALID
from preprocessing.pipeline import STD
from preprocessing.runner import PreprocessRunner
from tests.build_engines.triton_stub import python_model

BATCH = 8


def product_photo(width: int, height: int, seed: int, grey: bool = False) -> Image.Image:
    """A textured object on a studio-white background (the object box and the blur measure have work to do)."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 250, dtype=np.uint8)
    top, left = height // 5, width // 4
    texture = rng.integers(0, 256, (height - 2 * top, width - 2 * left, 3), dtype=np.uint8)
    pixels[top : height - top, left : width - left] = texture // 2 + np.array([90, 40, 10], dtype=np.uint8)
    image = Image.fromarray(pixels)
    return image.convert("L") if grey else image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files() -> list[bytes]:
    return [
        encode(product_photo(800, 600, 1), "JPEG", quality=90),
        encode(product_photo(300, 900, 2), "PNG"),
        encode(product_photo(64, 48, 3), "JPEG", quality=95),  # smaller than the backbone input: padded, not upscaled
        encode(product_photo(700, 700, 4, grey=True), "JPEG", quality=85),
        encode(product_photo(1600, 400, 5), "WEBP", quality=90),
    ]


@pytest.fixture(scope="module")
def corrupt(files) -> bytes:
    """A JPEG whose header reads fine (the gateway lets it through) but whose body is cut short."""
    from preprocessing.image_header import check_dimensions

    data = files[0][: len(files[0]) // 2]
    assert check_dimensions(data, max_pixels=50_000_000, max_side=20_000) is None
    return data


class Dali:
    """The DALI-backend model's graph with the CPU decoder, fed as the DALI backend feeds it (padded bytes plus
    lengths). A failed run leaves a DALI pipeline unusable, so it is rebuilt, as the DALI backend does."""

    def __init__(self, text: bool = False):
        self.text = text  # the text_overlay check served: TEXT_IMAGE too
        self.outputs = DALI_TEXT_OUTPUTS if text else DALI_OUTPUTS
        self.pipe = self._build()

    def _build(self):
        pipe = triton_pipeline(on_gpu=False, max_batch=BATCH, threads=1, text=self.text)
        pipe.build()
        return pipe

    def run(self, files: list[bytes]) -> dict[str, np.ndarray]:
        longest = max(len(f) for f in files)
        self.pipe.feed_input(IMAGE_BYTES.name, [np.frombuffer(f.ljust(longest, b"\0"), np.uint8) for f in files])
        self.pipe.feed_input(IMAGE_LENGTH.name, [np.array([len(f)], np.int32) for f in files])
        try:
            outputs = self.pipe.run()
        except RuntimeError:
            self.pipe = self._build()
            raise
        return {
            spec.name: np.stack([np.array(o[i]) for i in range(len(files))]) for spec, o in zip(self.outputs, outputs)
        }


@pytest.fixture(scope="module")
def dali() -> Dali:
    return Dali()


def features_config() -> dict:
    def tensor(spec):
        return {"name": spec.name, "data_type": spec.dtype, "dims": [str(d) for d in spec.dims]}

    return {
        "name": FEATURES_MODEL,
        "max_batch_size": BATCH,
        "input": [tensor(t) for t in FEATURES_INPUTS],
        "output": [tensor(t) for t in FEATURES_OUTPUTS],
    }


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """The generated `preprocess_features` model folder, run with a stand-in for the python backend."""
    version_dir = tmp_path_factory.mktemp("features") / FEATURES_MODEL / "1"
    write_features_code(version_dir)
    with python_model(version_dir / "model.py", features_config()) as model:
        yield model


def gpu_profile_preprocess(dali: Dali, features, files: list[bytes]) -> dict[str, np.ndarray]:
    """What the gpu profile's two preprocessing steps return for one request."""
    from tests.build_engines.triton_stub import Tensor

    decoded = dali.run(files)
    (response,) = features.execute([[Tensor(t.name, decoded[t.name]) for t in FEATURES_INPUTS]])
    return {**decoded, **response.outputs}


def test_the_served_pipeline_serialises_without_a_gpu(tmp_path):
    path = serialize_pipeline(tmp_path / "model.dali", max_batch=64, threads=4)
    serialized = path.read_bytes()
    # The decoder's `device` argument as DALI's protobuf holds it: "mixed" (nvJPEG), where the CPU graph says "cpu".
    mixed_device = b"\x06device\x12\x06string*\x05mixed"
    assert b"decoders__Image" in serialized and serialized.count(mixed_device) == 1
    assert triton_pipeline(on_gpu=False).serialize().count(mixed_device) == 0


def test_with_the_text_check_the_dali_model_adds_the_cpu_runners_text_copy(files):
    outputs = Dali(text=True).run(files)
    assert list(outputs) == [t.name for t in DALI_TEXT_OUTPUTS]
    assert outputs[TEXT_IMAGE.name].dtype == np.uint8 and outputs[TEXT_IMAGE.name].shape == (len(files), 512, 512, 3)
    runner = PreprocessRunner(max_batch=BATCH, threads=1, text=True).run([np.frombuffer(f, np.uint8) for f in files])
    np.testing.assert_array_equal(outputs[TEXT_IMAGE.name], runner[TEXT_IMAGE.name])
    assert "TEXT_IMAGE" not in PreprocessRunner(max_batch=BATCH, threads=1).outputs  # made only when asked


def test_outputs_come_in_the_config_order_with_its_dtypes_and_shapes(dali, files):
    outputs = dali.run(files)
    assert list(outputs) == [t.name for t in DALI_OUTPUTS]
    for spec in DALI_OUTPUTS:
        assert outputs[spec.name].dtype == np.dtype(spec.dtype), spec.name
        assert outputs[spec.name].shape == (len(files), *spec.dims), spec.name
    sizes = [Image.open(io.BytesIO(f)).size for f in files]
    np.testing.assert_array_equal(outputs[ORIG_SIZE.name], [(height, width) for width, height in sizes])
    # The Laplacian is of the working copy: longer side min(original, BLUR_SIDE), never upscaled.
    blur_side = LAPLACIAN.dims[0]
    for (width, height), laplacian_size in zip(sizes, outputs[LAPLACIAN_SIZE.name]):
        assert max(laplacian_size) == min(max(width, height), blur_side)


def test_the_gpu_profile_preprocessing_returns_what_the_cpu_runner_returns(dali, features, files):
    expected = PreprocessRunner(max_batch=BATCH, threads=1, device="cpu").run(
        [np.frombuffer(f, np.uint8) for f in files]
    )
    got = gpu_profile_preprocess(dali, features, files)
    for spec in (VALID, ORIG_SIZE):
        np.testing.assert_array_equal(got[spec.name], expected[spec.name], err_msg=spec.name)
    assert got[VALID.name].all()
    # The cpu runner resamples PIXELS and THUMB with PyTorch's fixed-point kernel (preprocessing.resampling), DALI
    # with its float one: the same triangular filter, apart by rounding (and at the edge of a copy whose shorter side
    # DALI scales by the unrounded factor).
    levels = np.abs(got[PIXELS.name] - expected[PIXELS.name]) * np.array(STD)[:, None, None]  # grey levels
    assert levels.mean() < 0.15 and np.percentile(levels, 99) < 1.5 and levels.max() < 16  # 0.05, 1.0, 12 measured
    thumbs = np.abs(got[THUMB.name].astype(int) - expected[THUMB.name].astype(int))
    assert thumbs.mean() < 0.3 and np.percentile(thumbs, 99) <= 2  # 0.11 and 1 measured
    np.testing.assert_allclose(got[QUALITY_FEATURES.name], expected[QUALITY_FEATURES.name], rtol=1e-6)
    assert (got[QUALITY_FEATURES.name][:, 0] > 0).all()  # the blur measure saw texture, not the zero padding


def test_int16_holds_the_laplacian_exactly():
    """The worst cases for a 3x3 Laplacian of 8-bit grey (single bright pixels, stripes, checkerboards): DALI's float
    result is integral and within int16, so the int16 output loses nothing."""
    from nvidia.dali import fn, pipeline_def, types

    patterns = []
    for period in (1, 2, 3):
        grid = np.indices((64, 64)) // period
        patterns += [(grid.sum(0) % 2) * 255, (grid[0] % 2) * 255, (grid[1] % 2) * 255]
    dot = np.zeros((64, 64), dtype=np.int64)
    dot[32, 32] = 255
    patterns += [dot, 255 - dot]

    @pipeline_def(batch_size=len(patterns), num_threads=1, device_id=None, prefetch_queue_depth=1)
    def laplacian():
        grey = fn.external_source(name="GREY", dtype=types.UINT8, ndim=3, layout="HWC")
        return fn.laplacian(grey, window_size=3, dtype=types.FLOAT)

    pipe = laplacian()
    pipe.build()
    pipe.feed_input("GREY", [p.astype(np.uint8)[..., None] for p in patterns])
    (result,) = pipe.run()
    values = np.concatenate([np.array(result[i]).ravel() for i in range(len(patterns))])
    assert np.array_equal(values, np.round(values))
    assert np.abs(values).max() <= 8160 < np.iinfo(np.int16).max


def test_the_features_model_needs_only_numpy(tmp_path):
    """It runs on the NGC image's Python: importing it with Pillow, DALI and the project unimportable works."""
    version_dir = tmp_path / FEATURES_MODEL / "1"
    write_features_code(version_dir)
    script = f"""
import sys, types
for name in ("PIL", "nvidia", "nvidia.dali", "contract", "preprocessing", "build_engines", "onnxruntime", "torch"):
    sys.modules[name] = None  # import fails
sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
sys.path.insert(0, {str(version_dir)!r})
import model
print("imported", model.quality_features.__module__)
"""
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "imported imgsel_measures" in result.stdout


def test_a_corrupt_image_fails_its_whole_dali_run_but_not_a_run_without_it(dali, files, corrupt):
    with pytest.raises(RuntimeError, match="decoders.image") as failure:
        dali.run([files[0], corrupt, files[1]])
    assert "decode" in str(failure.value).lower()
    with pytest.raises(RuntimeError, match="decoders.image"):
        dali.run([corrupt])
    outputs = dali.run([files[0], files[1]])  # the rebuilt pipeline serves the next request
    assert outputs[PIXELS.name].shape[0] == 2


def test_errors_of_other_operators_do_not_read_as_decoding_errors(dali, files):
    """The gateway retries image by image only when the error says "decode": a fault that is not the image's (here a
    length past the buffer, which the gateway never sends) must not blame the image."""
    from gateway.clients.triton import is_decode_error

    longest = len(files[0])
    dali.pipe.feed_input(IMAGE_BYTES.name, [np.frombuffer(files[0], np.uint8)])
    dali.pipe.feed_input(IMAGE_LENGTH.name, [np.array([longest + 1000], np.int32)])
    with pytest.raises(RuntimeError) as failure:
        dali.pipe.run()
    dali.pipe = dali._build()
    assert not is_decode_error(InferenceServerException(f"DALI error: {failure.value}", status="StatusCode.INTERNAL"))


class DaliBackedTriton:
    """Stands in for tritonclient's aio client in front of the gpu profile: each analyze request is one DALI run (no
    dynamic batching on the DALI model), failing as the DALI backend fails it; backbone and heads are zeros."""

    def __init__(self, dali: Dali, features):
        self.dali, self.features, self.calls = dali, features, []

    async def infer(self, model, inputs, outputs=None, client_timeout=None):
        from contract.tensors import EMBEDDING, QUALITY_OUTPUTS, QUALITY_SCORES

        feeds = {i.name(): np.frombuffer(i._get_content(), np.uint8) for i in inputs}
        shapes = {i.name(): i.shape() for i in inputs}
        padded = feeds[IMAGE_BYTES.name].reshape(shapes[IMAGE_BYTES.name])
        lengths = feeds[IMAGE_LENGTH.name].view(np.int32).reshape(-1)
        files = [padded[i, : lengths[i]].tobytes() for i in range(len(lengths))]
        self.calls.append(len(files))
        try:
            result = gpu_profile_preprocess(self.dali, self.features, files)
        except RuntimeError as error:  # how the DALI backend reports it, through the ensemble
            message = f"in ensemble 'analyze', DALI error: {error}"
            raise InferenceServerException(message, status="StatusCode.INTERNAL") from error
        result[EMBEDDING.name] = np.zeros((len(files), *EMBEDDING.dims), np.float32)
        result[QUALITY_SCORES.name] = np.zeros((len(files), len(QUALITY_OUTPUTS)), np.float32)
        return Result(result)

    async def get_model_repository_index(self, as_json=False):
        return {"models": [{"name": name, "state": "READY"} for name in ("analyze", "preprocess", FEATURES_MODEL)]}

    async def get_model_metadata(self, model, as_json=False):
        return {"name": model, "outputs": [{"name": "EMBEDDING"}, {"name": "QUALITY_SCORES"}]}  # no optional heads

    async def get_model_config(self, model, as_json=False):
        return {"config": {"name": model, "platform": "ensemble"}}

    async def close(self):
        pass


class Result:
    def __init__(self, arrays):
        self.arrays = arrays

    def as_numpy(self, name):
        return self.arrays[name]


def test_the_gateway_retry_leaves_the_corrupt_image_the_only_failure(dali, features, files, corrupt):
    from gateway.clients.triton import TritonAnalyzer

    fake = DaliBackedTriton(dali, features)

    async def analyze():
        analyzer = TritonAnalyzer("127.0.0.1:1", timeout_s=30.0, breaker_cooldown_s=1.0)
        analyzer.client = fake
        try:
            return await analyzer.analyze([files[0], corrupt, files[2]])
        finally:
            await analyzer.close()

    results = asyncio.run(analyze())
    assert [r is not None and r.valid for r in results] == [True, False, True]
    assert (results[0].height, results[0].width) == (600, 800)
    assert sorted(fake.calls) == [1, 1, 1, 3]  # the failed call, then each image alone
