"""What the cpu profile's python-backend models do with a dynamic batch of requests: gather their inputs into one
batch, and cut the batch's outputs back into one response per request. Imported by the models from the project
checkout (IMGSEL_PROJECT_ROOT), inside Triton's python stub."""

from __future__ import annotations

import numpy as np


def _utils():
    """The stub's module, looked up at each call: tests run the models under stand-ins of their own."""
    import triton_python_backend_utils

    return triton_python_backend_utils


def encoded_files(requests, bytes_name: str, length_name: str) -> tuple[list[int], list[np.ndarray]]:
    """(images per request, every request's encoded files in order): each file is its row of the request's
    zero-padded byte tensor, cut to its true length."""
    pb_utils = _utils()
    counts, files = [], []
    for request in requests:
        padded = pb_utils.get_input_tensor_by_name(request, bytes_name).as_numpy()
        lengths = pb_utils.get_input_tensor_by_name(request, length_name).as_numpy().reshape(-1)
        counts.append(len(padded))
        files.extend(padded[i, : max(0, min(int(lengths[i]), padded.shape[1]))] for i in range(len(padded)))
    return counts, files


def stacked_inputs(requests, names: list[str]) -> tuple[list[int], dict[str, np.ndarray]]:
    """(images per request, each input of every request concatenated along the batch axis)."""
    pb_utils = _utils()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    counts = []
    for request in requests:
        for name in names:
            parts[name].append(pb_utils.get_input_tensor_by_name(request, name).as_numpy())
        counts.append(len(parts[names[0]][-1]))
    return counts, {name: np.concatenate(arrays) for name, arrays in parts.items()}


def responses(outputs: dict[str, np.ndarray], counts: list[int], names: list[str]) -> list:
    """One InferenceResponse per request: its rows of each named batch output (contiguous, copied once into the
    response's shared memory)."""
    pb_utils = _utils()
    answers, start = [], 0
    for count in counts:
        tensors = [pb_utils.Tensor(name, np.ascontiguousarray(outputs[name][start : start + count])) for name in names]
        answers.append(pb_utils.InferenceResponse(output_tensors=tensors))
        start += count
    return answers
