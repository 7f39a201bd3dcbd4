"""Generate the Triton model repository for a profile.

    python -m build_engines.repository --profile cpu --out model_repository
    python -m build_engines.repository --profile gpu --out /tmp/gpu-repository [--build-plans]

Both profiles serve the same `analyze` model (inputs, outputs, dtypes, shapes), so the gateway cannot tell them apart,
with two differences it reads from Triton: the cpu profile also returns duplicate detection's hashes (HASH_OUTPUTS,
from the metadata), which the gateway computes from THUMB where they are absent, and its `analyze` runs as two
instances (from the config), over which the gateway spreads a lone product.
  cpu: python-backend models (DALI on CPU, onnxruntime for every ONNX model), runs on the wheel's tritonserver; the
       preprocessing also hashes each thumbnail (preprocessing.perceptual, Pillow and SciPy). By default `analyze` is
       ONE python model (triton_python/analyze.py: the preprocess runner, then the vision ONNX `1/vision.onnx`, in
       one process); with a compliance model served it is the ensemble `preprocess` -> `vision` + the checks.
  gpu: `preprocess` is a DALI-backend model (`model.dali`, nvJPEG decoding), followed by the numpy python-backend step
       `preprocess_features` (the measures DALI cannot compute; see build_engines.dali_model); every ONNX model is a
       `platform: "tensorrt_plan"` model (KIND_GPU) shipped as `1/model.onnx`, built into an FP16 plan on the target
       GPU by the Helm chart's engine-build init container. Generating it needs DALI (serialisation works without a
       GPU) but not TensorRT; `--build-plans` builds the plans here instead, where TensorRT is installed.

Both profiles may add the `nsfw` compliance model (build_engines/nsfw.py) beside `vision`, reading PIXELS: by default
on gpu only (`--nsfw` / `--no-nsfw`); and the `text_overlay` check (build_engines/text_overlay.py: `text_detect` and
the `text_overlay` scorer in the ensemble, `text_recognize` called by the scorer), reading the preprocessing stage's
TEXT_IMAGE, which the stage makes only then: by default on gpu only (`--text-overlay` / `--no-text-overlay`).

Size: over ~400 lines because both profiles' model configs are written side by side here, so that a model's cpu
and gpu configs are read (and changed) together; the DALI pipeline itself is in build_engines/dali_model.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from build_engines.artifacts import HEADS_DIR
from build_engines.nsfw import DEFAULT_OPERATING_POINT, NSFW, NSFW_OUTPUT, write_nsfw_onnx
from build_engines.text_overlay import (
    CHARSET_FILE,
    HEAD_FILE,
    TEXT_CODE_PROBS,
    TEXT_CODES,
    TEXT_DETECT,
    TEXT_LINE,
    TEXT_OVERLAY,
    TEXT_OVERLAY_OUTPUT,
    TEXT_PROB,
    TEXT_RECOGNIZE,
    write_detect_onnx,
    write_recognize_onnx,
    write_scorer_code,
)
from build_engines.vision import head_outputs, vision_heads, write_vision_onnx
from contract.tensors import (
    COMPLIANCE_PREFIX,
    EMBEDDING,
    ENSEMBLE,
    HASH_OUTPUTS,
    MAX_BATCH,
    ORIG_SIZE,
    PIXELS,
    PREPROCESS,
    PREPROCESS_INPUTS,
    PREPROCESS_OUTPUTS,
    QUALITY_FEATURES,
    TEXT_IMAGE,
    THUMB,
    VISION,
    TensorSpec,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRITON_PYTHON = Path(__file__).resolve().parent / "triton_python"

TRITON_DTYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "uint64": "TYPE_UINT64",
    "float32": "TYPE_FP32",
}
# gpu profile: DALI runs per gateway call; a few threads for the host side of decoding (headers, non-JPEG formats).
DALI_THREADS = 4
DALI_INSTANCES = 2  # a second call decodes while the first one's results are copied out
FEATURES_INSTANCES = 2  # ~numpy work per image on the CPU, beside the GPU
# cpu: images one onnxruntime run of the OCR models takes (onnx_model.py RUN_BATCH; its arena keeps the largest run's
# peak): text_detect peaks at 292 MB with 4 pictures (492 MB with 8, 3,266 MB with 64), text_recognize at 228 MB
# with 16 lines (590 MB with 64); `python -m loadtest.text_overlay_speed`, BENCHMARKS.md "text_overlay".
DETECT_RUN_BATCH = 4
RECOGNIZE_RUN_BATCH = 16
VISION_FILE = "vision.onnx"  # the vision ONNX inside the cpu profile's one `analyze` model


def is_one_model(repository: Path) -> bool:
    """Whether a generated repository's `analyze` is one model (the cpu default) rather than an ensemble."""
    return (repository / ENSEMBLE / "1" / VISION_FILE).is_file()


def vision_onnx(repository: Path) -> Path:
    """The vision ONNX a generated repository serves: inside `analyze` where it is one model, else `vision`'s."""
    if is_one_model(repository):
        return repository / ENSEMBLE / "1" / VISION_FILE
    return repository / VISION / "1" / "model.onnx"


def decoding_model(repository: Path) -> str:
    """The model that decodes the images: `analyze` where it is one model, else `preprocess`."""
    return ENSEMBLE if is_one_model(repository) else PREPROCESS


@dataclass(frozen=True)
class CpuServing:
    """The cpu profile's serving knobs, chosen by the sweep `python -m loadtest.sweep_serving` (table in
    BENCHMARKS.md "Serving knobs"); the defaults here are the chosen values written into the generated configs."""

    # Two preprocess processes keep both cores busy while one of them is in its numpy step (+4-12% images/s at 8-16
    # clients); they fit the 1 GB idle budget only with the slices below and the idle trim (BENCHMARKS.md, issue #13).
    preprocess_instances: int = 2
    dali_threads: int = 2
    # Images one DALI run takes (a larger dynamic batch runs in slices): DALI keeps buffers for the largest batch it
    # ran (a stub held ~455 MB PSS after a 16-client burst at 64, ~120-185 MB at 16, at the same images/s), and
    # trimming at idle hands back only what it freed.
    preprocess_run_batch: int = 16
    preprocess_queue_delay_us: int = 1000
    preprocess_preferred_batches: tuple[int, ...] = ()
    vision_instances: int = 1
    vision_threads: int = 2
    # Images one onnxruntime run takes (larger dynamic batches run in slices): its arena keeps the largest run's
    # activations, ~275 MB resident at 64 against ~120 MB at 16, at the same CPU per image (BENCHMARKS.md, issue #13).
    vision_run_batch: int = 16
    vision_preferred_batches: tuple[int, ...] = (8, 16, 32)
    vision_queue_delay_us: int = 2000
    # Where no compliance model is served, the analysis runs as ONE python model (triton_python/analyze.py: the
    # preprocess runner, then the vision ONNX, in one process) instead of the preprocess -> vision ensemble: 1.4-1.8
    # CPU ms an image less, 120-126 -> 137-139 images/s at 8 clients, 53-78 MB less idle PSS (BENCHMARKS.md). Two
    # instances with one DALI and one onnxruntime thread each: under load each core runs one instance's images
    # without four threads competing for two cores (2 threads each: -3.4% at 8 clients, 3 alternated runs). A lone
    # product is split across both by the gateway (gateway.clients.triton.plan_calls), so one client's p50 stays
    # ~60-75 ms.
    one_model: bool = True
    analyze_instances: int = 2
    analyze_threads: int = 1
    # Slices of 8: with PyTorch in each stub (preprocessing/resampling.py) slices of 16 left the stack at 995 MB PSS
    # idle after an 8-client load, 8 at 892, at the same throughput (150.0 / 150.9 images/s; sweep_serving, BENCHMARKS).
    analyze_run_batch: int = 8
    # No wait for more requests: an idle instance takes what is queued at once, so a product split in two runs on
    # both; under load requests queue, and are batched up to the preferred size below.
    analyze_queue_delay_us: int = 0
    # Batches of at most 4 images unless one request brings more (Triton stops adding requests where the batch would
    # pass its largest preferred size): small requests still share an execution, but two products, or the two halves
    # of a split one, are not merged onto one instance while the other waits. Merging bought nothing here (the model
    # runs slices of 8 anyway: 154-159 images/s at 8 clients either way) and cost the tail: without the cap Triton
    # merged the halves of ~24% of lone products, one client 109-111 -> 128-136 images/s and p99 104-124 -> 76-82 ms
    # with it, 8 clients' p99 753-803 -> 470-488 ms, 45-52 MB less idle PSS after load (sweep_serving, BENCHMARKS.md).
    analyze_preferred_batches: tuple[int, ...] = (4,)
    analyze_dynamic_batching: bool = True


def pbtxt(tensor: TensorSpec) -> str:
    """One entry of a config.pbtxt input/output list."""
    ragged = " allow_ragged_batch: true" if tensor.ragged else ""
    dims = ", ".join(str(d) for d in tensor.dims)
    return f'  {{ name: "{tensor.name}" data_type: {TRITON_DTYPES[tensor.dtype]} dims: [ {dims} ]{ragged} }}'


@dataclass
class Model:
    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preferred_batches: tuple[int, ...] = ()  # dynamic batching's preferred sizes (none: whatever is queued)
    queue_delay_us: int = 2000
    ort_threads: str = "2"
    parameters: dict[str, str] = field(default_factory=dict)


def preprocess_model(serving: CpuServing = CpuServing(), text: bool = False) -> Model:
    """The cpu profile's python `preprocess` model (preprocessing.runner): every profile's outputs and the hashes,
    and TEXT_IMAGE with `text` (the text_overlay check served)."""
    outputs = [*PREPROCESS_OUTPUTS, *HASH_OUTPUTS, *([TEXT_IMAGE] if text else [])]
    return Model(
        PREPROCESS,
        list(PREPROCESS_INPUTS),
        outputs,
        preferred_batches=serving.preprocess_preferred_batches,
        queue_delay_us=serving.preprocess_queue_delay_us,
    )


def vision_model(heads: list, precision: str, serving: CpuServing = CpuServing()) -> Model:
    """The `vision` model of the given spliced heads (build_engines.vision): PIXELS and QUALITY_FEATURES in, the
    embedding and one output per head out. `precision`: "int8" or "fp32", what its ONNX file holds."""
    return Model(
        VISION,
        [PIXELS, QUALITY_FEATURES],
        [EMBEDDING, *head_outputs(heads)],
        preferred_batches=serving.vision_preferred_batches,
        queue_delay_us=serving.vision_queue_delay_us,
        ort_threads=str(serving.vision_threads),
        parameters={"PRECISION": precision, "RUN_BATCH": str(serving.vision_run_batch)},
    )


def analyze_outputs(produced: set[str], vision: Model, compliance: tuple[Model, ...] = ()) -> list[TensorSpec]:
    """What `analyze` returns, whichever models compute it: the preprocessing outputs but PIXELS, the hashes where
    the preprocessing makes them (`produced`: the names it makes; cpu), the vision model's outputs and the compliance
    models' COMPLIANCE_<check> outputs (not their intermediate ones, such as TEXT_PROB)."""
    missing = [t.name for t in PREPROCESS_OUTPUTS if t.name not in produced]
    if missing:
        raise ValueError(f"the preprocessing stage does not produce {missing}")
    hashes = [t for t in HASH_OUTPUTS if t.name in produced]
    exposed = [t for t in PREPROCESS_OUTPUTS if t != PIXELS] + hashes + vision.outputs
    return exposed + [t for model in compliance for t in model.outputs if t.name.startswith(COMPLIANCE_PREFIX)]


def ensemble_config(stage: list[Model], vision: Model, compliance: tuple[Model, ...] = ()) -> str:
    """The analyze ensemble. `stage`: the preprocessing models in order (cpu: `preprocess`; gpu: the DALI
    `preprocess` then `preprocess_features`); whatever the stage, the ensemble returns the same tensors.
    `compliance`: compliance models of their own (nsfw; text_detect then text_overlay), in step order; the ensemble
    returns their COMPLIANCE_<check> outputs (not the intermediate ones, such as TEXT_PROB)."""

    def step(model: Model) -> str:
        maps = [f'      input_map {{ key: "{t.name}" value: "{t.name}" }}' for t in model.inputs]
        maps += [f'      output_map {{ key: "{t.name}" value: "{t.name}" }}' for t in model.outputs]
        return f'    {{\n      model_name: "{model.name}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"

    exposed = analyze_outputs({t.name for model in stage for t in model.outputs}, vision, compliance)
    return "\n".join(
        [
            f'name: "{ENSEMBLE}"',
            'platform: "ensemble"',
            f"max_batch_size: {MAX_BATCH}",
            "input [\n" + ",\n".join(pbtxt(t) for t in PREPROCESS_INPUTS) + "\n]",
            "output [\n" + ",\n".join(pbtxt(t) for t in exposed) + "\n]",
            "ensemble_scheduling {\n  step [\n"
            + ",\n".join(step(m) for m in [*stage, vision, *compliance])
            + "\n  ]\n}",
            "",
        ]
    )


def model_config(
    model: Model,
    platform_line: str,
    instance_kind: str,
    parameters: dict[str, str],
    *,
    dynamic_batching: bool = True,
    instances: int = 1,
    comments: tuple[str, ...] = (),
) -> str:
    sizes = ", ".join(str(n) for n in model.preferred_batches)
    preferred = f"preferred_batch_size: [ {sizes} ] " if sizes else ""
    lines = [f"# {comment}" for comment in comments]
    lines += [
        f'name: "{model.name}"',
        platform_line,
        f"max_batch_size: {MAX_BATCH}",
        "input [\n" + ",\n".join(pbtxt(t) for t in model.inputs) + "\n]",
        "output [\n" + ",\n".join(pbtxt(t) for t in model.outputs) + "\n]",
    ]
    if dynamic_batching:
        lines.append(f"dynamic_batching {{ {preferred}max_queue_delay_microseconds: {model.queue_delay_us} }}")
    lines.append(f"instance_group [ {{ kind: {instance_kind} count: {instances} }} ]")
    lines += [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in parameters.items()]
    return "\n".join(lines) + "\n"


TENSORRT_COMMENTS = (
    "TensorRT plan built on the GPU that serves it, from 1/model.onnx: FP16, one optimisation profile over batch 1 to",
    "max_batch_size (optimum at a quarter of it), by the Helm chart's engine-build init container (trtexec --fp16),",
    "or here with `python -m build_engines.repository --profile gpu --build-plans` where TensorRT is installed.",
)


def write_cpu_preprocess(
    out: Path, python_params: dict[str, str], serving: CpuServing, text: bool = False
) -> list[Model]:
    pre = preprocess_model(serving, text)
    (out / pre.name / "1").mkdir(parents=True)
    shutil.copy(TRITON_PYTHON / "preprocess.py", out / pre.name / "1" / "model.py")
    pre_params = {
        **python_params,
        "DALI_DEVICE": "cpu",
        "DALI_THREADS": str(serving.dali_threads),
        "RUN_BATCH": str(serving.preprocess_run_batch),
    }
    if text:
        pre_params["TEXT_IMAGE"] = "1"
    config = model_config(pre, 'backend: "python"', "KIND_CPU", pre_params, instances=serving.preprocess_instances)
    (out / pre.name / "config.pbtxt").write_text(config)
    return [pre]


def write_cpu_analyze(out: Path, vision: Model, python_params: dict[str, str], serving: CpuServing) -> Model:
    """The cpu profile's `analyze` as one python model (triton_python/analyze.py), its vision ONNX already written
    to `1/VISION_FILE`: the ensemble's inputs and outputs, computed in one process."""
    produced = {t.name for t in preprocess_model(serving).outputs}
    outputs = analyze_outputs(produced, vision)
    model = Model(
        ENSEMBLE,
        list(PREPROCESS_INPUTS),
        outputs,
        preferred_batches=serving.analyze_preferred_batches,
        queue_delay_us=serving.analyze_queue_delay_us,
    )
    shutil.copy(TRITON_PYTHON / "analyze.py", out / ENSEMBLE / "1" / "model.py")
    params = {
        **python_params,
        "DALI_THREADS": str(serving.analyze_threads),
        "ORT_THREADS": str(serving.analyze_threads),
        "RUN_BATCH": str(serving.analyze_run_batch),
        "VISION_FILE": VISION_FILE,
        "PRECISION": vision.parameters["PRECISION"],
    }
    config = model_config(
        model,
        'backend: "python"',
        "KIND_CPU",
        params,
        dynamic_batching=serving.analyze_dynamic_batching,
        instances=serving.analyze_instances,
    )
    (out / ENSEMBLE / "config.pbtxt").write_text(config)
    return model


def write_gpu_preprocess(out: Path, text: bool = False) -> list[Model]:
    """The DALI-backend `preprocess` (model.dali, nvJPEG) and the numpy step `preprocess_features` after it; with
    `text`, `preprocess` also makes TEXT_IMAGE."""
    from build_engines.dali_model import (
        DALI_INPUTS,
        DALI_OUTPUTS,
        DALI_TEXT_OUTPUTS,
        FEATURES_INPUTS,
        FEATURES_MODEL,
        FEATURES_OUTPUTS,
        dali_version,
        serialize_pipeline,
        write_features_code,
    )

    dali = Model(PREPROCESS, list(DALI_INPUTS), list(DALI_TEXT_OUTPUTS if text else DALI_OUTPUTS))
    serialize_pipeline(out / dali.name / "1" / "model.dali", MAX_BATCH, DALI_THREADS, text)
    comments = (
        f"model.dali: serialised by nvidia-dali {dali_version()} (build_engines.dali_model); the Triton image's DALI",
        'must read it (same or newer DALI). Decoding with nvJPEG (device="mixed"), the image ops on the GPU.',
        "No dynamic batching: each request is one DALI run, so an undecodable image (which fails its whole DALI run)",
        "fails only the gateway call that carried it; the gateway then retries that call image by image.",
    )
    config = model_config(
        dali,
        'backend: "dali"',
        "KIND_GPU",
        {"num_threads": str(DALI_THREADS)},
        dynamic_batching=False,
        instances=DALI_INSTANCES,
        comments=comments,
    )
    (out / dali.name / "config.pbtxt").write_text(config)

    features = Model(FEATURES_MODEL, list(FEATURES_INPUTS), list(FEATURES_OUTPUTS), queue_delay_us=500)
    write_features_code(out / features.name / "1")
    comments = ("numpy only: runs on the Triton image's own Python (no EXECUTION_ENV_PATH, no project checkout).",)
    config = model_config(
        features, 'backend: "python"', "KIND_CPU", {}, instances=FEATURES_INSTANCES, comments=comments
    )
    (out / features.name / "config.pbtxt").write_text(config)
    return [dali, features]


def write_onnx_config(
    out: Path, model: Model, profile: str, python_params: dict[str, str], instances: int, build_plans: bool
) -> None:
    """The config of a model whose `1/model.onnx` is written: onnxruntime in the python backend (cpu), a TensorRT
    plan (gpu; built here with `build_plans`, else by the chart's engine-build init container)."""
    version_dir = out / model.name / "1"
    if profile == "cpu":
        shutil.copy(TRITON_PYTHON / "onnx_model.py", version_dir / "model.py")
        params = {**python_params, "ORT_THREADS": model.ort_threads, **model.parameters}
        config = model_config(model, 'backend: "python"', "KIND_CPU", params, instances=instances)
    else:
        config = model_config(model, 'platform: "tensorrt_plan"', "KIND_GPU", {}, comments=TENSORRT_COMMENTS)
        if build_plans:
            from build_engines.tensorrt_build import build_engine

            inputs = {t.name: t.dims for t in model.inputs}
            build_engine(version_dir / "model.onnx", version_dir / "model.plan", inputs, MAX_BATCH)
            (version_dir / "model.onnx").unlink()  # the chart's engine build uses a plan it finds without ONNX
    (out / model.name / "config.pbtxt").write_text(config)


def serves_nsfw(profile: str, nsfw: bool | None) -> bool:
    """The nsfw model is served when asked, by default on the gpu profile only: on the cpu profile it would cost ~4x
    the vision model's CPU an image (BENCHMARKS.md), a deliberate choice there (`--nsfw`, `make repo NSFW=1`)."""
    return profile == "gpu" if nsfw is None else nsfw


def write_nsfw(
    out: Path,
    profile: str,
    python_params: dict[str, str],
    serving: CpuServing,
    operating_point: float,
    build_plans: bool,
) -> Model:
    """The nsfw compliance model (build_engines.nsfw): PIXELS -> COMPLIANCE_nsfw, batched with the vision model's
    knobs of this repository (`serving`)."""
    model = Model(
        NSFW,
        [PIXELS],
        [TensorSpec(NSFW_OUTPUT, "float32", (1,))],
        preferred_batches=serving.vision_preferred_batches,
        queue_delay_us=serving.vision_queue_delay_us,
        ort_threads=str(serving.vision_threads),
        parameters={"OPERATING_POINT": str(operating_point)},
    )
    write_nsfw_onnx(out / NSFW / "1" / "model.onnx", operating_point)
    write_onnx_config(out, model, profile, python_params, 1, build_plans)
    return model


def serves_text_overlay(profile: str, text_overlay: bool | None) -> bool:
    """The text_overlay check is served when asked, by default on the gpu profile only: on the cpu profile its OCR
    would cost ~30x the vision model's CPU an image (BENCHMARKS.md), a deliberate choice there
    (`--text-overlay`, `make repo TEXT_OVERLAY=1`)."""
    return profile == "gpu" if text_overlay is None else text_overlay


def write_text_overlay(
    out: Path, profile: str, python_params: dict[str, str], serving: CpuServing, build_plans: bool, heads_dir: Path
) -> tuple[Model, Model]:
    """The text_overlay check (build_engines.text_overlay): `text_detect` and `text_recognize` (ONNX: onnxruntime on
    cpu, TensorRT plans on gpu) and the numpy scorer `text_overlay`, which calls text_recognize. Returns the ensemble's
    steps: text_detect, then text_overlay."""
    head = heads_dir / HEAD_FILE
    if not head.is_file():
        raise FileNotFoundError(f"{head}: the text_overlay head is not trained (python -m training.text_overlay)")
    detect = Model(
        TEXT_DETECT,
        [TEXT_IMAGE],
        [TEXT_PROB],
        preferred_batches=serving.vision_preferred_batches,
        queue_delay_us=serving.vision_queue_delay_us,
        ort_threads=str(serving.vision_threads),
        parameters={"RUN_BATCH": str(DETECT_RUN_BATCH)},
    )
    write_detect_onnx(out / TEXT_DETECT / "1" / "model.onnx")
    write_onnx_config(out, detect, profile, python_params, 1, build_plans)
    recognize = Model(
        TEXT_RECOGNIZE,
        [TEXT_LINE],
        [TEXT_CODES, TEXT_CODE_PROBS],
        ort_threads=str(serving.vision_threads),
        parameters={"RUN_BATCH": str(RECOGNIZE_RUN_BATCH)},
    )
    write_recognize_onnx(out / TEXT_RECOGNIZE / "1" / "model.onnx")
    write_onnx_config(out, recognize, profile, python_params, 1, build_plans)

    scorer = Model(
        TEXT_OVERLAY, [TEXT_IMAGE, TEXT_PROB, ORIG_SIZE, THUMB], [TensorSpec(TEXT_OVERLAY_OUTPUT, "float32", (1,))]
    )
    write_scorer_code(out / TEXT_OVERLAY / "1", head)
    # cpu: the wheel's server has no Python with numpy of its own, so the venv's (EXECUTION_ENV_PATH); gpu: the image's.
    params = {
        **(python_params if profile == "cpu" else {}),
        "RECOGNIZER": TEXT_RECOGNIZE,
        "RECOGNIZER_TENSORS": ",".join(t.name for t in (TEXT_LINE, TEXT_CODES, TEXT_CODE_PROBS)),
        "RECOGNIZER_MAX_BATCH": str(MAX_BATCH),
        "HEAD": HEAD_FILE,
        "CHARSET": CHARSET_FILE,
    }
    comments = ("numpy only (imgsel_ocr.py and the measures written beside model.py): runs on any Triton Python.",)
    config = model_config(scorer, 'backend: "python"', "KIND_CPU", params, comments=comments)
    (out / TEXT_OVERLAY / "config.pbtxt").write_text(config)
    return detect, scorer


def clear_repository(out: Path) -> None:
    """Remove every model folder (a folder with a config.pbtxt) and the PROFILE marker: models are regenerated from
    scratch. Anything else (the committed model_repository/README.md, unrelated folders of a mistaken --out) stays."""
    if out.exists():
        for entry in out.iterdir():
            # Only what a generated repository holds: model folders (config.pbtxt) and the PROFILE marker.
            if entry.is_dir() and not entry.is_symlink() and (entry / "config.pbtxt").is_file():
                shutil.rmtree(entry)
            elif entry.name == "PROFILE" and entry.is_file():
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate(
    profile: str,
    out: Path,
    env_path: Path,
    project_root: Path,
    backbone_weights: str | None = None,
    heads_dir: Path = HEADS_DIR,
    build_plans: bool = False,
    precision: str | None = None,
    serving: CpuServing = CpuServing(),
    nsfw: bool | None = None,
    nsfw_operating_point: float = DEFAULT_OPERATING_POINT,
    text_overlay: bool | None = None,
) -> list[str]:
    """Write the repository; returns the model names. ONNX files are exported fresh every time. `build_plans` (gpu
    only) builds the TensorRT plans here, which needs TensorRT; without it the plans are built on the target GPU.
    `precision` of the vision model's ONNX file: "int8" (cpu default, when the committed calibration matches the
    backbone) or "fp32" (gpu default: TensorRT builds its FP16 engine from it). `serving`: the cpu profile's knobs.
    `nsfw`: serve the nsfw compliance model (build_engines.nsfw; default: gpu yes, cpu no, where it would cost ~4x
    the vision model's CPU an image, BENCHMARKS.md) with its open_nsfw operating point `nsfw_operating_point`.
    `text_overlay`: serve the text_overlay check (build_engines.text_overlay; default: gpu yes, cpu no)."""
    if profile not in ("cpu", "gpu"):
        raise ValueError(f"profile must be cpu or gpu, got {profile!r}")
    if build_plans:
        if profile != "gpu":
            raise ValueError("build_plans is for the gpu profile (the cpu profile serves the ONNX files)")
        from build_engines.tensorrt_build import import_tensorrt

        import_tensorrt()  # fail before touching `out` when engines cannot be built here
    clear_repository(out)
    python_params = {"EXECUTION_ENV_PATH": str(env_path), "IMGSEL_PROJECT_ROOT": str(project_root)}
    text = serves_text_overlay(profile, text_overlay)
    one_model = profile == "cpu" and serving.one_model and not text and not serves_nsfw(profile, nsfw)
    if one_model:
        stage = []
    elif profile == "cpu":
        stage = write_cpu_preprocess(out, python_params, serving, text)
    else:
        stage = write_gpu_preprocess(out, text)

    with tempfile.TemporaryDirectory(prefix="imgsel-vision-") as scratch:
        heads = vision_heads(Path(scratch), heads_dir)
        onnx_file = out / ENSEMBLE / "1" / VISION_FILE if one_model else out / VISION / "1" / "model.onnx"
        onnx_file.parent.mkdir(parents=True)
        precision = precision or ("int8" if profile == "cpu" else "fp32")  # TensorRT builds FP16 from the fp32 file
        served = write_vision_onnx(onnx_file, heads, backbone_weights, precision, Path(scratch))
        vision = vision_model(heads, served, serving)
    if one_model:
        write_cpu_analyze(out, vision, python_params, serving)
    else:
        write_onnx_config(out, vision, profile, python_params, serving.vision_instances, build_plans)
        compliance: tuple[Model, ...] = ()
        if serves_nsfw(profile, nsfw):
            compliance = (write_nsfw(out, profile, python_params, serving, nsfw_operating_point, build_plans),)
        if text:
            compliance += write_text_overlay(out, profile, python_params, serving, build_plans, heads_dir)
        (out / ENSEMBLE / "1").mkdir(parents=True)  # an ensemble needs an (empty) version folder
        (out / ENSEMBLE / "config.pbtxt").write_text(ensemble_config(stage, vision, compliance))
    (out / "PROFILE").write_text(profile + "\n")
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "model_repository")
    parser.add_argument(
        "--env-path",
        type=Path,
        default=Path(sys.prefix),
        help="virtualenv the python-backend models run in (default: this interpreter's)",
    )
    parser.add_argument(
        "--project-root",
        type=Path,
        default=PROJECT_ROOT,
        help="where the python-backend models import preprocessing/ from (e.g. /opt/imgsel in a container)",
    )
    parser.add_argument(
        "--backbone-weights",
        default=None,
        help="local checkpoint for the backbone (default: ImageNet weights from the pip package)",
    )
    parser.add_argument(
        "--build-plans",
        action="store_true",
        help="gpu profile: build the TensorRT plans here (needs TensorRT and the target GPU) instead of shipping "
        "1/model.onnx for the Helm chart's engine-build init container",
    )
    parser.add_argument(
        "--precision",
        choices=["int8", "fp32"],
        default=None,
        help="the vision model's ONNX precision (default: int8 for cpu, fp32 for gpu, whose engine build makes FP16)",
    )
    parser.add_argument(
        "--nsfw",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the nsfw compliance model (open_nsfw; default: on for gpu, off for cpu, where it costs ~4x the "
        "vision model's CPU an image)",
    )
    parser.add_argument(
        "--nsfw-operating-point",
        type=float,
        default=DEFAULT_OPERATING_POINT,
        help="open_nsfw probability that the served nsfw score maps to 0.5",
    )
    parser.add_argument(
        "--text-overlay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the text_overlay check (PP-OCRv4 detection + recognition and a trained head; default: on for gpu, "
        "off for cpu, where its OCR costs ~30x the vision model's CPU an image)",
    )
    parser.add_argument(
        "--analyze-instances",
        type=int,
        default=None,
        help=f"cpu profile without compliance models: instances of the one analyze model, one core each (default: "
        f"{CpuServing.analyze_instances}, for 2 cores); the gateway spreads a lone product over them",
    )
    args = parser.parse_args(argv)
    if args.analyze_instances is not None:
        if args.analyze_instances < 1:
            parser.error("--analyze-instances must be at least 1")
        if args.profile != "cpu" or serves_nsfw(args.profile, args.nsfw) or args.text_overlay:
            parser.error("--analyze-instances is for the cpu profile's one analyze model (no --nsfw, --text-overlay)")
    if args.build_plans and args.profile != "gpu":
        parser.error("--build-plans is for --profile gpu")
    from build_engines.tensorrt_build import TensorRTUnavailable

    try:
        names = generate(
            args.profile,
            args.out,
            args.env_path.absolute(),
            args.project_root.absolute(),
            args.backbone_weights,
            build_plans=args.build_plans,
            precision=args.precision,
            nsfw=args.nsfw,
            nsfw_operating_point=args.nsfw_operating_point,
            text_overlay=args.text_overlay,
            serving=dataclasses.replace(
                CpuServing(), analyze_instances=args.analyze_instances or CpuServing.analyze_instances
            ),
        )
    except TensorRTUnavailable as error:
        print(f"cannot build the TensorRT plans here: {error}", file=sys.stderr)
        return 2
    print(f"{args.profile} model repository at {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
