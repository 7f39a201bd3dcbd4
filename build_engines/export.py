"""ONNX export (single file, dynamic batch axis) with a torch-vs-onnxruntime parity check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

OPSET = 17


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor],
    path: Path,
    input_name: str | Sequence[str],
    output_name: str,
) -> Path:
    """`example` and `input_name` may be sequences for a module with several inputs (forward(*inputs))."""
    module = module.eval()
    examples, input_names = _as_tuple(example), [input_name] if isinstance(input_name, str) else list(input_name)
    if len(examples) != len(input_names):
        raise ValueError(f"{len(examples)} example inputs for {len(input_names)} input names")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Legacy exporter: one self-contained file (the dynamo exporter writes external weight files by default).
    torch.onnx.export(
        module,
        examples,
        str(path),
        input_names=input_names,
        output_names=[output_name],
        dynamic_axes={**{name: {0: "batch"} for name in input_names}, output_name: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    return path


def max_parity_error(module: torch.nn.Module, path: Path, example: torch.Tensor | Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on `example` (one tensor per input)."""
    import onnxruntime as ort

    examples = _as_tuple(example)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module.eval()(*examples).numpy()
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), examples)}
    got = session.run(None, feeds)[0]
    return float(np.abs(expected - got).max())
