"""The chart's engine-build script (helm/imgsel/files/engine_build.py), run as the init container runs it, with
stand-ins for nvidia-smi and trtexec on PATH: plans are built once per GPU model, TensorRT version, ONNX file and
build arguments, reused otherwise, and the repository Triton serves is assembled from links."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from build_engines.repository import Model, model_config
from contract.tensors import EMBEDDING, PIXELS, QUALITY_FEATURES, QUALITY_SCORES
from tests.helm.chart import chart_file

SCRIPT = chart_file("files/engine_build.py")
TENSORRT = 'platform: "tensorrt_plan"'

FAKE_TRTEXEC = """#!/bin/sh
# Stand-in for trtexec: logs its arguments, writes them as the "plan", fails when asked to.
if [ "$1" = "--help" ]; then echo "&&&& RUNNING TensorRT.trtexec [TensorRT v100500] # trtexec --help"; exit 0; fi
echo "$@" >> "$TRTEXEC_LOG"
if [ -n "$TRTEXEC_FAIL" ]; then echo "[E] Error[4]: parse failed"; exit 1; fi
for arg in "$@"; do case "$arg" in --saveEngine=*) printf '%s\\n' "$*" > "${arg#--saveEngine=}";; esac; done
"""
FAKE_NVIDIA_SMI = """#!/bin/sh
[ -n "$GPU_NAME" ] || { echo "No devices were found" >&2; exit 6; }
echo "$GPU_NAME"
"""


def load_script():
    spec = importlib.util.spec_from_file_location("engine_build", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


engine_build = load_script()


def write_model(root: Path, name: str, config: str, onnx: bytes | None = None) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "config.pbtxt").write_text(config)
    if onnx is not None:
        (root / name / "1" / "model.onnx").write_bytes(onnx)


@pytest.fixture
def setup(tmp_path):
    """A gpu-profile repository (configs from the project's own generator), the stand-ins, and a runner."""
    source = tmp_path / "models"
    backbone = Model("backbone", [PIXELS], [EMBEDDING], preferred_batches=(8, 16, 32))
    quality = Model("quality", [EMBEDDING, QUALITY_FEATURES], [QUALITY_SCORES], preferred_batches=(8, 16, 32))
    write_model(source, "backbone", model_config(backbone, TENSORRT, "KIND_GPU", {}), b"backbone-onnx")
    write_model(source, "quality", model_config(quality, TENSORRT, "KIND_GPU", {}), b"quality-onnx")
    write_model(source, "preprocess", 'name: "preprocess"\nbackend: "dali"\nmax_batch_size: 64\n')
    (source / "preprocess" / "1" / "model.dali").write_bytes(b"serialized pipeline")
    write_model(source, "analyze", 'name: "analyze"\nplatform: "ensemble"\nmax_batch_size: 64\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("trtexec", FAKE_TRTEXEC), ("nvidia-smi", FAKE_NVIDIA_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "trtexec.log"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TRTEXEC_LOG": str(log), "GPU_NAME": "NVIDIA L4"}

    def run(**overrides: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(SCRIPT), f"--source={source}", f"--cache={source / '.engine-cache'}"]
        command += [f"--serving={tmp_path / 'serving'}", f"--trtexec={bin_dir / 'trtexec'}", "--fp16"]
        return subprocess.run(command, capture_output=True, text=True, env={**env, **overrides}, timeout=60)

    def builds() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    return source, tmp_path / "serving", run, builds


def test_optimisation_profile_comes_from_the_generated_config():
    backbone = Model("backbone", [PIXELS], [EMBEDDING], preferred_batches=(8, 16, 32))
    quality = Model("quality", [EMBEDDING, QUALITY_FEATURES], [QUALITY_SCORES], preferred_batches=(8, 16, 32))
    parse = engine_build.parse_pbtxt
    assert engine_build.shape_arguments(parse(model_config(backbone, TENSORRT, "KIND_GPU", {})), "backbone") == [
        "--minShapes=PIXELS:1x3x224x224",
        "--optShapes=PIXELS:16x3x224x224",
        "--maxShapes=PIXELS:64x3x224x224",
    ]
    assert engine_build.shape_arguments(parse(model_config(quality, TENSORRT, "KIND_GPU", {})), "quality") == [
        "--minShapes=EMBEDDING:1x1280,QUALITY_FEATURES:1x2",
        "--optShapes=EMBEDDING:16x1280,QUALITY_FEATURES:16x2",
        "--maxShapes=EMBEDDING:64x1280,QUALITY_FEATURES:64x2",
    ]


def test_pbtxt_reader_handles_nesting_comments_and_repeated_fields():
    config = engine_build.parse_pbtxt(
        '# generated\nname: "m" platform: "tensorrt_plan"\nmax_batch_size: 8\n'
        'input { name: "A" data_type: TYPE_FP32 dims: [ 4 ] }\ninput { name: "B" dims: [2, 2] }\n'
        'parameters { key: "k" value: { string_value: "v" } }\n'
    )
    assert [engine_build.first(t, "name") for t in config["input"]] == ["A", "B"]
    assert config["input"][1]["dims"] == ["2", "2"]
    assert config["parameters"][0]["value"][0]["string_value"] == ["v"]


def test_plans_are_built_once_then_reused(setup):
    source, serving, run, builds = setup
    first = run()
    assert first.returncode == 0, first.stderr
    assert len(builds()) == 2 and all("--fp16" in line and "--minShapes=" in line for line in builds())
    assert '"gpu": "NVIDIA L4"' in first.stdout and '"tensorrt": "10.5.0"' in first.stdout
    plan = (serving / "backbone" / "1" / "model.plan").resolve()
    assert plan.is_file() and plan.is_relative_to(source / ".engine-cache" / "NVIDIA-L4" / "trt-10.5.0" / "backbone")
    assert (serving / "backbone" / "config.pbtxt").read_text() == (source / "backbone" / "config.pbtxt").read_text()
    assert not (serving / "backbone" / "1" / "model.onnx").exists()
    assert (serving / "preprocess").resolve() == source / "preprocess"
    assert (serving / "analyze" / "config.pbtxt").is_file()

    second = run()
    assert second.returncode == 0 and len(builds()) == 2, "a cached key must not build again"
    assert '"built": false' in second.stdout and (serving / "backbone" / "1" / "model.plan").resolve() == plan


@pytest.mark.parametrize(
    "change",
    ["another GPU model", "another TensorRT version", "new ONNX file", "new batch range"],
)
def test_a_new_key_builds_again(setup, change):
    source, serving, run, builds = setup
    assert run().returncode == 0 and len(builds()) == 2
    before = (serving / "backbone" / "1" / "model.plan").resolve()
    overrides = {}
    if change == "another GPU model":
        overrides["GPU_NAME"] = "NVIDIA H100 80GB HBM3"
    elif change == "another TensorRT version":
        overrides["TRT_VERSION"] = "10.7.0.23"
    elif change == "new ONNX file":
        (source / "backbone" / "1" / "model.onnx").write_bytes(b"retrained backbone")
    else:
        config = source / "backbone" / "config.pbtxt"
        config.write_text(config.read_text().replace("max_batch_size: 64", "max_batch_size: 32"))
    result = run(**overrides)
    assert result.returncode == 0, result.stderr
    rebuilt = builds()[2:]
    expected = 1 if change in ("new ONNX file", "new batch range") else 2  # a new ONNX or config: that model only
    assert len(rebuilt) == expected and "backbone" in rebuilt[0]
    assert (serving / "backbone" / "1" / "model.plan").resolve() != before
    assert before.is_file(), "other keys' plans stay cached (a rollback or another node's GPU uses them)"


def test_a_failed_build_stops_the_pod_and_leaves_no_partial_plan(setup):
    source, _, run, _ = setup
    result = run(TRTEXEC_FAIL="1")
    assert result.returncode == 1 and "trtexec failed" in result.stderr and "parse failed" in result.stderr
    cache = source / ".engine-cache"
    assert not [p for p in cache.rglob("*") if p.is_file()], "nothing half-built may look like a cached plan"


def test_no_gpu_is_a_clear_error(setup):
    _, _, run, builds = setup
    result = run(GPU_NAME="")
    assert result.returncode == 1 and "nvidia-smi found no GPU" in result.stderr and not builds()


def test_a_prebuilt_plan_is_served_as_is(setup):
    source, serving, run, builds = setup
    (source / "quality" / "1" / "model.onnx").unlink()
    (source / "quality" / "1" / "model.plan").write_bytes(b"plan built elsewhere")
    assert run().returncode == 0 and len(builds()) == 1
    assert (serving / "quality" / "1" / "model.plan").read_bytes() == b"plan built elsewhere"


def test_a_variable_dimension_cannot_become_a_plan(setup):
    source, _, run, _ = setup
    config = source / "backbone" / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: [ 3, 224, 224 ]", "dims: [ 3, -1, -1 ]"))
    result = run()
    assert result.returncode == 1 and "variable dimension" in result.stderr


def test_tensorrt_version_from_ngc_environment_else_the_trtexec_banner(setup, monkeypatch):
    _, _, run, _ = setup
    assert '"tensorrt": "10.5.0"' in run().stdout  # no TRT_VERSION: "[TensorRT v100500]" from trtexec --help
    monkeypatch.setenv("TRT_VERSION", "10.3.0.26")
    assert engine_build.tensorrt_version("unused") == "10.3.0.26"
