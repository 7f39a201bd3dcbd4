"""ONNX export (single file, dynamic batch axis) with a torch-vs-onnxruntime parity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

OPSET = 17


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> Path:
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Legacy exporter: one self-contained file (the dynamo exporter writes external weight files by default).
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    return path


def max_parity_error(module: torch.nn.Module, path: Path, example: torch.Tensor) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on `example`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module.eval()(example).numpy()
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    return float(np.abs(expected - got).max())
