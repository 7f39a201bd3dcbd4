"""Both profiles' generated model repositories, read as Triton reads them: every config.pbtxt parsed into Triton's
ModelConfig protobuf (tritonclient's model_config_pb2), the analyze ensemble's wiring checked tensor by tensor, the
two profiles compared, the gpu profile's TensorRT and DALI configs checked, and the gpu repository handed to the Helm
chart's engine-build script (stand-in trtexec) as the init container would.

The gpu profile is generated without TensorRT (as `make repo PROFILE=gpu` on a machine without it). The backbone's
ONNX export (torch, the slow part) is replaced by a copy of a file exported once into .cache/tests/ (same weights, so
the cpu profile's int8 quantisation with the committed calibration runs for real). Names, dtypes and shapes, which
these tests are about, do not depend on the weights."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from build_engines import repository, vision
from build_engines.dali_model import DALI_TEXT_OUTPUTS, FEATURES_MODEL
from build_engines.nsfw import NSFW, NSFW_OUTPUT
from build_engines.text_overlay import (
    CHARSET_FILE,
    HEAD_FILE,
    TEXT_DETECT,
    TEXT_OVERLAY,
    TEXT_OVERLAY_OUTPUT,
    TEXT_PROB,
    TEXT_RECOGNIZE,
)
from contract.tensors import ENSEMBLE, HASH_OUTPUTS, MAX_BATCH, PREPROCESS, REQUIRED_MODELS, VISION

ROOT = Path(__file__).resolve().parents[2]
ENGINE_BUILD = ROOT / "helm" / "imgsel" / "files" / "engine_build.py"
NUMPY_DTYPES = {mc.TYPE_BOOL: np.bool_, mc.TYPE_UINT8: np.uint8, mc.TYPE_INT32: np.int32, mc.TYPE_FP32: np.float32}
HASH_NAMES = [t.name for t in HASH_OUTPUTS]


def exported_backbone() -> Path:
    return vision.cached_backbone_export(ROOT / ".cache" / "tests")


@pytest.fixture(scope="module")
def repositories(tmp_path_factory) -> dict[str, Path]:
    """{"cpu": ..., "gpu": ...}: cpu with generate() as the stack does, gpu through the command line (no TensorRT)."""
    source = exported_backbone()
    root = tmp_path_factory.mktemp("repositories")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vision, "export_backbone", lambda path, weights: shutil.copy(source, path))
        # The gpu defaults; cpu opts in.
        repository.generate("cpu", root / "cpu", Path(sys.prefix), ROOT, nsfw=True, text_overlay=True)
        assert repository.main(["--profile", "gpu", "--out", str(root / "gpu")]) == 0
    return {"cpu": root / "cpu", "gpu": root / "gpu"}


def load_configs(repo: Path) -> dict[str, mc.ModelConfig]:
    configs = {}
    for folder in sorted(p for p in repo.iterdir() if (p / "config.pbtxt").is_file()):
        configs[folder.name] = text_format.Parse((folder / "config.pbtxt").read_text(), mc.ModelConfig())
    return configs


@pytest.fixture(scope="module")
def configs(repositories) -> dict[str, dict[str, mc.ModelConfig]]:
    return {profile: load_configs(repo) for profile, repo in repositories.items()}


def signature(tensors) -> dict[str, tuple[int, tuple[int, ...]]]:
    return {t.name: (t.data_type, tuple(t.dims)) for t in tensors}


def dims_match(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank, every fixed dimension equal (-1 matches anything, as Triton's ensemble check allows)."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def wiring_errors(configs: dict[str, mc.ModelConfig]) -> list[str]:
    """Everything wrong with the ensemble's wiring, in words; empty when every step input comes from an ensemble
    input or an earlier step's output of the same dtype and shape, every step output exists on its model, and
    every ensemble output is produced with its declared dtype and shape."""
    ensemble = configs[ENSEMBLE]
    known = signature(ensemble.input)  # tensor name -> (dtype, dims) available so far
    consumed, errors = set(), []
    for step in ensemble.ensemble_scheduling.step:
        if step.model_name not in configs:
            errors.append(f"step {step.model_name}: no such model")
            continue
        model = configs[step.model_name]
        inputs, outputs = signature(model.input), signature(model.output)
        if model.max_batch_size < ensemble.max_batch_size:
            errors.append(f"{model.name}: max_batch_size {model.max_batch_size} < the ensemble's")
        unmapped = set(inputs) - set(step.input_map)
        if unmapped:
            errors.append(f"{model.name}: inputs {sorted(unmapped)} not mapped")
        for model_input, tensor in step.input_map.items():
            if model_input not in inputs:
                errors.append(f"{model.name}: has no input {model_input}")
            elif tensor not in known:
                errors.append(f"{model.name}.{model_input} <- {tensor}: not an ensemble input or earlier output")
            elif known[tensor][0] != inputs[model_input][0] or not dims_match(known[tensor][1], inputs[model_input][1]):
                errors.append(f"{model.name}.{model_input} <- {tensor}: {known[tensor]} vs {inputs[model_input]}")
            consumed.add(tensor)
        for model_output, tensor in step.output_map.items():
            if model_output not in outputs:
                errors.append(f"{model.name}: has no output {model_output}")
            elif tensor in known:
                errors.append(f"{tensor}: produced twice")
            else:
                known[tensor] = outputs[model_output]
    for name, (dtype, dims) in signature(ensemble.output).items():
        if name not in known:
            errors.append(f"ensemble output {name}: produced by no step")
        elif known[name][0] != dtype or not dims_match(known[name][1], dims):
            errors.append(f"ensemble output {name}: declared {(dtype, dims)}, produced {known[name]}")
    dangling = set(known) - consumed - {t.name for t in ensemble.output} - {t.name for t in ensemble.input}
    if dangling:
        errors.append(f"produced but never used: {sorted(dangling)}")
    return errors


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_config_is_a_triton_model_config_of_its_folder(repositories, configs, profile):
    for name, config in configs[profile].items():
        assert config.name == name
        assert config.max_batch_size == MAX_BATCH, name
        assert (repositories[profile] / name / "1").is_dir(), name
        assert config.platform or config.backend, name
    assert set(REQUIRED_MODELS) <= set(configs[profile])


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_ensemble_wiring_holds(configs, profile):
    assert wiring_errors(configs[profile]) == []


def test_the_wiring_check_finds_broken_wiring(configs):
    broken = {name: mc.ModelConfig.FromString(c.SerializeToString()) for name, c in configs["gpu"].items()}
    broken[VISION].input[0].dims[0] = 4  # PIXELS [4, 224, 224]
    broken[FEATURES_MODEL].output[0].data_type = mc.TYPE_INT32  # VALID as int32
    del broken[ENSEMBLE].ensemble_scheduling.step[1].input_map["LAPLACIAN"]
    errors = "\n".join(wiring_errors(broken))
    assert "vision.PIXELS <- PIXELS" in errors
    assert "ensemble output VALID: declared" in errors
    assert "preprocess_features: inputs ['LAPLACIAN'] not mapped" in errors


def test_both_profiles_serve_the_same_ensemble_but_only_cpu_returns_the_hashes(configs):
    """The gpu profile's numpy step cannot run the hashing code (Pillow, SciPy): its gateway hashes THUMB itself."""
    cpu, gpu = configs["cpu"][ENSEMBLE], configs["gpu"][ENSEMBLE]
    assert [m.SerializeToString() for m in cpu.input] == [m.SerializeToString() for m in gpu.input]
    cpu_outputs = [m for m in cpu.output if m.name not in HASH_NAMES]
    assert [m.SerializeToString() for m in cpu_outputs] == [m.SerializeToString() for m in gpu.output]
    assert signature(cpu.output).keys() - signature(gpu.output).keys() == set(HASH_NAMES)
    hashes = signature(cpu.output)
    assert hashes["PHASH"] == hashes["DHASH_EDGE"] == (mc.TYPE_UINT64, (1,))
    assert hashes["HSV_HIST"] == (mc.TYPE_FP32, (28,))
    assert NSFW_OUTPUT in signature(cpu.output)
    assert cpu.max_batch_size == gpu.max_batch_size


def test_both_profiles_have_the_same_models_with_the_same_tensors(configs):
    """The gpu profile adds one step (the measures DALI cannot compute); every other model, preprocess's inputs
    included, has the same tensors in both."""
    cpu, gpu = configs["cpu"], configs["gpu"]
    assert set(gpu) - set(cpu) == {FEATURES_MODEL}
    assert set(cpu) <= set(gpu)
    for name in set(cpu) - {ENSEMBLE}:
        assert signature(gpu[name].input) == signature(cpu[name].input), name
        if name != PREPROCESS:
            assert signature(gpu[name].output) == signature(cpu[name].output), name
    cpu_preprocess = {n: spec for n, spec in signature(cpu[PREPROCESS].output).items() if n not in HASH_NAMES}
    gpu_stage = signature(gpu[PREPROCESS].output) | signature(gpu[FEATURES_MODEL].output)
    assert cpu_preprocess.items() <= gpu_stage.items()


def test_gpu_classifiers_are_tensorrt_models_batched_as_on_cpu(repositories, configs):
    cpu, gpu = configs["cpu"], configs["gpu"]
    onnx_models = [name for name in cpu if (repositories["cpu"] / name / "1" / "model.onnx").is_file()]
    assert onnx_models == [NSFW, TEXT_DETECT, TEXT_RECOGNIZE, VISION]
    for name in onnx_models:
        config, version_dir = gpu[name], repositories["gpu"] / name / "1"
        assert config.platform == "tensorrt_plan" and not config.backend, name
        assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU], name
        assert config.dynamic_batching == cpu[name].dynamic_batching, name
        assert config.HasField("dynamic_batching"), name
        assert sorted(p.name for p in version_dir.iterdir()) == ["model.onnx"], name  # the chart builds the plan
        assert "FP16" in (repositories["gpu"] / name / "config.pbtxt").read_text(), name


def test_gpu_onnx_files_have_the_config_tensors(repositories, configs):
    """A TensorRT plan keeps the ONNX tensor names, so Triton finds the config's tensors in the engine only when the
    ONNX has them: names, and with onnxruntime on a batch of 2, the dtypes and per-image shapes."""
    import onnxruntime as ort

    for name, config in configs["gpu"].items():
        if config.platform != "tensorrt_plan":
            continue
        path = repositories["gpu"] / name / "1" / "model.onnx"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [t.name for t in config.input], name
        assert [o.name for o in session.get_outputs()] == [t.name for t in config.output], name
        rng = np.random.default_rng(0)
        feeds = {t.name: rng.random((2, *t.dims)).astype(NUMPY_DTYPES[t.data_type]) for t in config.input}
        for tensor, value in zip(config.output, session.run(None, feeds)):
            assert value.dtype == NUMPY_DTYPES[tensor.data_type], (name, tensor.name)
            assert value.shape == (2, *tensor.dims), (name, tensor.name)


def test_gpu_preprocess_is_the_dali_backend_without_dynamic_batching(repositories, configs):
    config = configs["gpu"][PREPROCESS]
    assert config.backend == "dali" and not config.platform
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    # Each request its own DALI run: an undecodable image then fails only the gateway call that carried it.
    assert not config.HasField("dynamic_batching")
    # The DALI backend maps config outputs to the pipeline's outputs by position.
    assert [t.name for t in config.output] == [t.name for t in DALI_TEXT_OUTPUTS]  # text_overlay is served on gpu
    model = repositories["gpu"] / PREPROCESS / "1" / "model.dali"
    assert b"decoders__Image" in model.read_bytes()
    assert config.parameters["num_threads"].string_value.isdigit()


def test_gpu_python_step_runs_on_the_triton_images_own_python(repositories, configs):
    config = configs["gpu"][FEATURES_MODEL]
    assert config.backend == "python"
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert not {"EXECUTION_ENV_PATH", "IMGSEL_PROJECT_ROOT"} & set(config.parameters)
    version_dir = repositories["gpu"] / FEATURES_MODEL / "1"
    assert sorted(p.name for p in version_dir.iterdir()) == ["imgsel_foreground.py", "imgsel_measures.py", "model.py"]
    # No model of the gpu profile points at this machine's virtualenv or checkout.
    for folder in repositories["gpu"].iterdir():
        if (folder / "config.pbtxt").is_file():
            assert str(ROOT) not in (folder / "config.pbtxt").read_text(), folder.name


def test_the_chart_engine_build_assembles_the_gpu_repository(repositories, tmp_path):
    """helm/imgsel/files/engine_build.py, as the init container runs it (trtexec replaced by a script that writes
    its arguments as the plan): every tensorrt_plan model gets a plan built with the profile of its config, the
    DALI and python models are served as generated."""
    spec = importlib.util.spec_from_file_location("engine_build_under_test", ENGINE_BUILD)
    engine_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine_build)
    trtexec = tmp_path / "trtexec"
    save = 'case "$arg" in --saveEngine=*) echo "$*" > "${arg#--saveEngine=}";; esac'
    trtexec.write_text(f'#!/bin/sh\nfor arg in "$@"; do {save}; done\n')
    trtexec.chmod(0o755)
    args = argparse.Namespace(
        source=str(repositories["gpu"]),
        cache=str(tmp_path / "cache"),
        serving=str(tmp_path / "serving"),
        trtexec=str(trtexec),
        fp16=True,
        trtexec_arg=[],
    )
    report = {entry["model"]: entry for entry in engine_build.assemble(args, "NVIDIA H200", "10.5.0")}
    gpu = load_configs(repositories["gpu"])
    assert set(report) == set(gpu)
    for name, config in gpu.items():
        served = tmp_path / "serving" / name
        if config.platform == "tensorrt_plan":
            assert report[name]["built"] is True, name
            plan = (served / "1" / "model.plan").read_text()
            assert "--fp16" in plan and f"--maxShapes={config.input[0].name}:{MAX_BATCH}x" in plan, name
        else:
            assert served.resolve() == (repositories["gpu"] / name).resolve(), name
    assert (tmp_path / "serving" / PREPROCESS / "1" / "model.dali").is_file()


def test_build_plans_needs_tensorrt_and_leaves_the_repository_alone_without_it(tmp_path, capsys):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: --build-plans would build plans")
    out = tmp_path / "repository"
    (out / "kept").mkdir(parents=True)
    assert repository.main(["--profile", "gpu", "--out", str(out), "--build-plans"]) == 2
    assert "TensorRT is not installed" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["kept"]
    with pytest.raises(SystemExit):
        repository.main(["--profile", "cpu", "--out", str(out), "--build-plans"])


def test_build_plans_builds_every_plan_in_place(tmp_path):
    """Only where TensorRT and a GPU are present (the target node): plans replace the ONNX files."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed here (NGC TensorRT/tritonserver images have it)")
    out = tmp_path / "repository"
    repository.generate("gpu", out, Path(sys.prefix), ROOT, build_plans=True)
    for name, config in load_configs(out).items():
        if config.platform == "tensorrt_plan":
            assert sorted(p.name for p in (out / name / "1").iterdir()) == ["model.plan"], name


def test_the_nsfw_model_is_served_by_default_on_gpu_only():
    assert repository.serves_nsfw("gpu", None) and not repository.serves_nsfw("cpu", None)
    assert repository.serves_nsfw("cpu", True) and not repository.serves_nsfw("gpu", False)


def test_the_nsfw_model_reads_pixels_and_scores_each_image(configs):
    for profile in ("cpu", "gpu"):
        config = configs[profile][NSFW]
        assert signature(config.input) == {"PIXELS": (mc.TYPE_FP32, (3, 224, 224))}
        assert signature(config.output) == {NSFW_OUTPUT: (mc.TYPE_FP32, (1,))}


def test_the_text_overlay_check_is_served_by_default_on_gpu_only():
    assert repository.serves_text_overlay("gpu", None) and not repository.serves_text_overlay("cpu", None)
    assert repository.serves_text_overlay("cpu", True) and not repository.serves_text_overlay("gpu", False)
    # Without it the cpu preprocess model makes no TEXT_IMAGE: the default profile pays nothing for the check.
    assert "TEXT_IMAGE" not in {t.name for t in repository.preprocess_model().outputs}
    assert "TEXT_IMAGE" in {t.name for t in repository.preprocess_model(text=True).outputs}


def test_the_text_overlay_models_read_the_text_copy_and_score_each_image(repositories, configs):
    for profile in ("cpu", "gpu"):
        models = configs[profile]
        assert signature(models[TEXT_DETECT].input) == {"TEXT_IMAGE": (mc.TYPE_UINT8, (512, 512, 3))}
        assert signature(models[TEXT_DETECT].output) == {TEXT_PROB.name: (mc.TYPE_FP32, (256, 256))}
        assert signature(models[TEXT_RECOGNIZE].input) == {"TEXT_LINE": (mc.TYPE_UINT8, (48, 320, 3))}
        scorer = models[TEXT_OVERLAY]
        assert [t.name for t in scorer.input] == ["TEXT_IMAGE", TEXT_PROB.name, "ORIG_SIZE", "THUMB"]
        assert signature(scorer.output) == {TEXT_OVERLAY_OUTPUT: (mc.TYPE_FP32, (1,))}
        assert scorer.backend == "python" and scorer.parameters["RECOGNIZER"].string_value == TEXT_RECOGNIZE
        # The recogniser is called by the scorer, not an ensemble step; only the score leaves the ensemble.
        steps = [step.model_name for step in models[ENSEMBLE].ensemble_scheduling.step]
        assert TEXT_RECOGNIZE not in steps and steps.index(TEXT_DETECT) < steps.index(TEXT_OVERLAY)
        outputs = {t.name for t in models[ENSEMBLE].output}
        assert TEXT_OVERLAY_OUTPUT in outputs and TEXT_PROB.name not in outputs and "TEXT_IMAGE" not in outputs
        version_dir = repositories[profile] / TEXT_OVERLAY / "1"
        assert sorted(p.name for p in version_dir.iterdir() if p.is_file()) == sorted(
            [CHARSET_FILE, HEAD_FILE, "imgsel_foreground.py", "imgsel_measures.py", "imgsel_ocr.py", "model.py"]
        )
    assert "EXECUTION_ENV_PATH" in configs["cpu"][TEXT_OVERLAY].parameters  # the venv's numpy
    assert "EXECUTION_ENV_PATH" not in configs["gpu"][TEXT_OVERLAY].parameters  # the Triton image's own Python
    assert configs["cpu"][PREPROCESS].parameters["TEXT_IMAGE"].string_value == "1"
    # cpu: onnxruntime runs of bounded size, so the arenas keep a small peak (repository.DETECT_RUN_BATCH).
    assert configs["cpu"][TEXT_DETECT].parameters["RUN_BATCH"].string_value == str(repository.DETECT_RUN_BATCH)
    assert configs["cpu"][TEXT_RECOGNIZE].parameters["RUN_BATCH"].string_value == str(repository.RECOGNIZE_RUN_BATCH)
