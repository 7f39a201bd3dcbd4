"""Rewiring an ONNX model that the repository serves under the contract's tensor names (nsfw, text_overlay): one
place that swaps a graph's nodes, inputs and outputs, checks the result and writes it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def rewire_and_save(model, nodes: Iterable, inputs: Iterable, outputs: Iterable, out: Path) -> Path:
    """Give `model`'s graph exactly these nodes and input/output value infos, check it, save it to `out`."""
    import onnx

    graph = model.graph
    nodes = list(nodes)  # may be built from graph.node itself: copy before clearing
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.output[:]
    graph.output.extend(outputs)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
