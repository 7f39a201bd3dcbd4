"""Tensor contract shared by the model repository (both profiles) and the gateway. Constants only: importing
this must stay cheap (the gateway imports it; it must not pull in torch)."""

ENSEMBLE = "analyze"
EMBEDDING_DIM = 1280
QUALITY_OUTPUTS = ("blur", "small_object")  # columns of QUALITY_SCORES, in order
TYPE_HEAD_INPUT = "EMBEDDING"
TYPE_HEAD_OUTPUT = "TYPE_PROBS"  # softmax over the category's `types`, in categories.toml order
