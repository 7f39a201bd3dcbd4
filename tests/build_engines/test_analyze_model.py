"""The cpu profile's default `analyze`: one python model (build_engines/triton_python/analyze.py) doing what the
preprocess -> vision ensemble does. Its config against the ensemble's, and the model itself run outside Triton
(tests/build_engines/triton_stub.py) on real JPEGs and a corrupt file, against the preprocess runner and the vision
ONNX run directly."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2 as mc

from build_engines import repository, vision
from contract.tensors import ENSEMBLE, IMAGE_BYTES, IMAGE_LENGTH, PIXELS, PREPROCESS, QUALITY_FEATURES, VISION
from tests.build_engines.triton_stub import Tensor, json_config, python_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    """{"one model": the cpu default, "ensemble": the same with CpuServing(one_model=False)}, float32 vision files
    (no quantisation: the layout is what is tested; the backbone export is the cached test copy)."""
    source = vision.cached_backbone_export(ROOT / ".cache" / "tests")
    root = tmp_path_factory.mktemp("layouts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vision, "export_backbone", lambda path, weights: shutil.copy(source, path))
        layouts = {"one model": repository.CpuServing(), "ensemble": repository.CpuServing(one_model=False)}
        for name, serving in layouts.items():
            repository.generate("cpu", root / name, Path(sys.prefix), ROOT, precision="fp32", serving=serving)
    return {"one model": root / "one model", "ensemble": root / "ensemble"}


def config(repo: Path, model: str) -> mc.ModelConfig:
    return text_format.Parse((repo / model / "config.pbtxt").read_text(), mc.ModelConfig())


def signature(tensors) -> list[tuple[str, int, tuple[int, ...]]]:
    return [(t.name, t.data_type, tuple(t.dims)) for t in tensors]


def test_the_default_cpu_repository_is_one_analyze_model_with_the_ensemble_s_tensors(layouts):
    one, ensemble = layouts["one model"], layouts["ensemble"]
    assert sorted(p.name for p in one.iterdir() if p.is_dir()) == [ENSEMBLE]
    assert {PREPROCESS, VISION, ENSEMBLE} <= {p.name for p in ensemble.iterdir() if p.is_dir()}
    model, wired = config(one, ENSEMBLE), config(ensemble, ENSEMBLE)
    assert model.backend == "python" and wired.platform == "ensemble"
    assert signature(model.input) == signature(wired.input)
    assert signature(model.output) == signature(wired.output)
    serving = repository.CpuServing()
    assert [(g.kind, g.count) for g in model.instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, serving.analyze_instances)
    ]
    assert model.dynamic_batching.max_queue_delay_microseconds == serving.analyze_queue_delay_us
    # batches capped at the preferred size: a product's halves run on both instances, not merged onto one
    assert list(model.dynamic_batching.preferred_batch_size) == list(serving.analyze_preferred_batches) == [4]
    assert sorted(p.name for p in (one / ENSEMBLE / "1").iterdir()) == ["model.py", repository.VISION_FILE]
    assert repository.vision_onnx(one) == one / ENSEMBLE / "1" / repository.VISION_FILE
    assert repository.vision_onnx(ensemble) == ensemble / VISION / "1" / "model.onnx"


def test_a_compliance_model_on_cpu_keeps_the_ensemble(tmp_path):
    """nsfw and text_overlay read the preprocessing's tensors in steps of their own, so they need the ensemble."""
    source = vision.cached_backbone_export(ROOT / ".cache" / "tests")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vision, "export_backbone", lambda path, weights: shutil.copy(source, path))
        names = repository.generate("cpu", tmp_path, Path(sys.prefix), ROOT, precision="fp32", nsfw=True)
    assert {ENSEMBLE, PREPROCESS, VISION, "nsfw"} <= set(names)
    assert config(tmp_path, ENSEMBLE).platform == "ensemble"


def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    picture = np.full((size[1], size[0], 3), 255, np.uint8)
    picture[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = rng.integers(0, 255, 3)
    picture = np.clip(picture.astype(int) + rng.integers(-20, 20, picture.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def request(files: list[bytes]) -> list[Tensor]:
    longest = max(len(f) for f in files)
    padded = np.zeros((len(files), longest), np.uint8)
    for row, data in enumerate(files):
        padded[row, : len(data)] = np.frombuffer(data, np.uint8)
    lengths = np.array([[len(f)] for f in files], np.int32)
    return [Tensor(IMAGE_BYTES.name, padded), Tensor(IMAGE_LENGTH.name, lengths)]


@pytest.mark.parametrize("run_batch", ["16", "2"])  # 2: the dynamic batch of 4 runs as two slices
def test_the_model_answers_each_request_as_the_runner_and_the_vision_onnx_do(layouts, run_batch):
    import onnxruntime as ort

    from preprocessing.runner import PreprocessRunner

    folder = layouts["one model"] / ENSEMBLE
    model_config = json_config(config(layouts["one model"], ENSEMBLE))
    model_config["parameters"]["RUN_BATCH"]["string_value"] = run_batch
    first = [jpeg(1, (640, 480)), b"not an image at all", jpeg(2, (300, 500))]
    second = [jpeg(3, (800, 800))]
    with python_model(folder / "1" / "model.py", model_config) as model:
        answers = model.execute([request(first), request(second)])
    assert len(answers) == 2
    assert [list(a.outputs["VALID"][:, 0]) for a in answers] == [[True, False, True], [True]]
    names = [o.name for o in config(layouts["one model"], ENSEMBLE).output]
    assert all(set(a.outputs) == set(names) for a in answers)
    assert PIXELS.name not in names  # stays inside the process

    files = [np.frombuffer(f, np.uint8) for f in first + second]
    expected = PreprocessRunner(max_batch=16, threads=1).run(files)
    session = ort.InferenceSession(str(folder / "1" / repository.VISION_FILE), providers=["CPUExecutionProvider"])
    feeds = {n: expected[n] for n in (PIXELS.name, QUALITY_FEATURES.name)}
    expected |= zip([o.name for o in session.get_outputs()], session.run(None, feeds))
    got = {n: np.concatenate([a.outputs[n] for a in answers]) for n in names}
    for name in names:
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not got["THUMB"][1].any() and got["EMBEDDING"][0].any()  # the corrupt file: zeros, as in the ensemble


def test_the_command_line_sets_the_analyze_instances_for_a_larger_machine(tmp_path):
    source = vision.cached_backbone_export(ROOT / ".cache" / "tests")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vision, "export_backbone", lambda path, weights: shutil.copy(source, path))
        command = ["--profile", "cpu", "--out", str(tmp_path), "--precision", "fp32", "--analyze-instances", "4"]
        assert repository.main(command) == 0
        for wrong in ([*command[:-1], "0"], [*command, "--nsfw"], ["--profile", "gpu", "--analyze-instances", "4"]):
            with pytest.raises(SystemExit):
                repository.main(wrong)
    assert [g.count for g in config(tmp_path, ENSEMBLE).instance_group] == [4]
