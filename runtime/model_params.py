"""What the python-backend models read from their Triton config: shared by the onnxruntime model and the preprocess
model, which the repository generator gives the same RUN_BATCH parameter (build_engines.repository.CpuServing)."""

from __future__ import annotations


def run_batch(config: dict, params: dict[str, str]) -> int:
    """The most images one run of the model's engine takes: `max_batch_size`, or the RUN_BATCH parameter where a
    larger dynamic batch runs in slices (text_detect: 512 px feature maps; vision and preprocess: onnxruntime's arena
    and DALI's buffers keep the largest run's size)."""
    return min(int(config["max_batch_size"]), int(params.get("RUN_BATCH", config["max_batch_size"])))
