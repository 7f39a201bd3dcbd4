"""Build a TensorRT engine (FP16, one optimisation profile over the batch range) from an ONNX file.

Runs where TensorRT is installed: the target GPU node, e.g. inside the NGC TensorRT / tritonserver container
(engines are specific to the GPU and TensorRT version, so they are built there, never shipped). Used by
`build_engines.repository --profile gpu --build-plans`; without that flag the gpu repository ships the ONNX files and
the Helm chart's engine-build init container builds the same plans with trtexec (helm/imgsel/files/engine_build.py).
"""

from __future__ import annotations

from pathlib import Path


class TensorRTUnavailable(RuntimeError):
    pass


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as error:
        raise TensorRTUnavailable(
            "TensorRT is not installed here; generate the gpu repository without --build-plans (it ships the ONNX "
            "files and the Helm chart's engine-build init container builds the plans on the target GPU), or run "
            "--build-plans on the target GPU inside the NGC TensorRT or tritonserver container, or build each plan "
            "with `trtexec --onnx=model.onnx --saveEngine=model.plan --fp16 --minShapes=... --maxShapes=...`"
        ) from error
    return tensorrt


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    input_dims: dict[str, tuple[int, ...]],
    max_batch: int,
    fp16: bool = True,
    workspace_bytes: int = 2 << 30,
) -> Path:
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch; TensorRT 8 needs the flag.
    flags = (
        0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    # Per-image dims of each input by name; every input shares the batch range.
    for index in range(network.num_inputs):
        name = network.get_input(index).name
        if name not in input_dims:
            raise ValueError(f"{onnx_path}: no dims given for input {name!r}")
        dims = tuple(input_dims[name])
        profile.set_shape(name, (1, *dims), (max(1, max_batch // 4), *dims), (max_batch, *dims))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    Path(plan_path).write_bytes(serialized)
    return Path(plan_path)
