"""Tensor contract shared by the model repository (both profiles) and the gateway. Constants only: importing
this must stay cheap (the gateway imports it; it must not pull in torch)."""

ENSEMBLE = "analyze"
EMBEDDING_DIM = 1280
# Columns of QUALITY_SCORES, in order (the learned quality head, build_engines/heads/quality.onnx). The interim
# classical fallback serves only the first two; the gateway reports the columns it receives.
QUALITY_OUTPUTS = ("blur", "small_object", "placeholder")
QUALITY_INPUTS = ("EMBEDDING", "QUALITY_FEATURES")  # the learned head's inputs (backbone, preprocess)
TYPE_HEAD_INPUT = "EMBEDDING"
TYPE_HEAD_OUTPUT = "TYPE_PROBS"  # softmax over the category's `types`, in categories.toml order
# The top-level category head (model `category`, a step of the analyze ensemble when heads/category.onnx exists):
# softmax over categories.toml [category_head].classes, in that order.
CATEGORY_HEAD_INPUT = "EMBEDDING"
CATEGORY_HEAD_OUTPUT = "CATEGORY_PROBS"
