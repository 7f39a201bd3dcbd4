"""The tensor contract shared by the model repository (both profiles), the preprocessing pipeline, training and the
gateway: every model name, every tensor's name, dtype and per-image shape, and the batch limit. Constants only,
standard library only: importing this must stay cheap (the gateway imports it; it must not pull in torch)."""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------------- models
ENSEMBLE = "analyze"  # one call per request batch: preprocess -> vision (on cpu, by default, one model doing both)
PREPROCESS = "preprocess"  # DALI: decode once, resize, normalise, thumbnail, blur features
VISION = "vision"  # ONE graph: the backbone and every head below, one output per head (build_engines/vision.py)
# The parts of the vision model (the trained files in build_engines/heads/ and the prefixes of their nodes):
BACKBONE = "backbone"  # EfficientNet-Lite0 -> embedding
QUALITY = "quality"  # learned quality head (or the interim classical measures)
CATEGORY_HEAD_MODEL = "category"  # top-level category head, when trained
TYPE_HEAD_PREFIX = "type_"  # a category's type head file is `type_<category>.onnx`; its output TYPE_PROBS_<category>
COMPLIANCE_HEAD_PREFIX = "compliance_"  # a compliance check's head file is `compliance_<check>.onnx`
SEARCH_HEAD_MODEL = "search"  # the retrieval embedding head (training/search_head.py), when trained
# Models /readyz requires: Triton readies an ensemble only once its steps are, and the cpu profile's default
# `analyze` is one model (build_engines.repository.CpuServing.one_model).
REQUIRED_MODELS = (ENSEMBLE,)
MAX_BATCH = 64  # every model's max_batch_size; the gateway splits larger requests into calls of at most this

# -------------------------------------------------------------------------------------------- image geometry
BACKBONE_SIDE = 224  # backbone input side (longer side resized to it, padded square)
THUMB_SIDE = 128  # the gateway's hashing thumbnail (aspect squashed, as imagehash does)
EMBEDDING_DIM = 1280
# Bins of the colour histogram duplicate detection compares (preprocessing.colour: 4 tone + 12 hue x 2 saturation).
HSV_HIST_BINS = 28
# QUALITY_FEATURES columns (classical measures the preprocess model takes).
QUALITY_FEATURE_NAMES = ("laplacian_variance", "object_area_fraction")
# Columns of QUALITY_SCORES, in order (the learned quality head, build_engines/heads/quality.onnx). The interim
# classical fallback serves only the first two; the gateway reports the columns it receives.
QUALITY_OUTPUTS = ("blur", "small_object", "placeholder")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the contract: `dims` are per image (the batch axis is implied), -1 = variable length;
    `ragged`: Triton's dynamic batcher may merge requests whose lengths differ (encoded bytes)."""

    name: str
    dtype: str  # numpy dtype name
    dims: tuple[int, ...]
    ragged: bool = False


# ------------------------------------------------------------------------------------------------- tensors
IMAGE_BYTES = TensorSpec("IMAGE_BYTES", "uint8", (-1,), ragged=True)  # encoded file, zero-padded to the longest
IMAGE_LENGTH = TensorSpec("IMAGE_LENGTH", "int32", (1,))  # the file's true length
VALID = TensorSpec("VALID", "bool", (1,))  # false: the image could not be decoded (it fails alone)
ORIG_SIZE = TensorSpec("ORIG_SIZE", "int32", (2,))  # height, width from the header
PIXELS = TensorSpec("PIXELS", "float32", (3, BACKBONE_SIDE, BACKBONE_SIDE))  # normalised backbone input
THUMB = TensorSpec("THUMB", "uint8", (THUMB_SIDE, THUMB_SIDE, 3))  # RGB thumbnail for the gateway's hashes
QUALITY_FEATURES = TensorSpec("QUALITY_FEATURES", "float32", (len(QUALITY_FEATURE_NAMES),))
EMBEDDING = TensorSpec("EMBEDDING", "float32", (EMBEDDING_DIM,))
QUALITY_SCORES = TensorSpec("QUALITY_SCORES", "float32", (len(QUALITY_OUTPUTS),))
# Duplicate detection's hashes of THUMB (preprocessing.perceptual.hash_features), made where the preprocessing stage
# can run that code (the cpu profile's python model); else the gateway makes them from THUMB.
PHASH = TensorSpec("PHASH", "uint64", (1,))
DHASH_EDGE = TensorSpec("DHASH_EDGE", "uint64", (1,))
HSV_HIST = TensorSpec("HSV_HIST", "float32", (HSV_HIST_BINS,))
HASH_OUTPUTS = (PHASH, DHASH_EDGE, HSV_HIST)
# The text_overlay check's copy of the picture (build_engines/text_overlay.py): longer side TEXT_SIDE, centred on white,
# made by the preprocessing stage only where that check is served, and read only inside Triton.
TEXT_SIDE = 512
TEXT_IMAGE = TensorSpec("TEXT_IMAGE", "uint8", (TEXT_SIDE, TEXT_SIDE, 3))

PREPROCESS_INPUTS = (IMAGE_BYTES, IMAGE_LENGTH)
# What every profile's preprocessing stage produces; the cpu profile's also produces HASH_OUTPUTS.
PREPROCESS_OUTPUTS = (VALID, ORIG_SIZE, PIXELS, THUMB, QUALITY_FEATURES)
# What the analyze ensemble always returns per image (PIXELS stays inside Triton); the vision model adds
# CATEGORY_PROBS when the category head is trained, one TYPE_PROBS_<category> per trained type head and one
# COMPLIANCE_<check> per trained compliance head, and the
# ensemble passes on HASH_OUTPUTS where its preprocessing stage makes them.
ANALYZE_OUTPUTS = (VALID, ORIG_SIZE, THUMB, EMBEDDING, QUALITY_SCORES)

QUALITY_INPUTS = (EMBEDDING.name, QUALITY_FEATURES.name)  # the learned head's inputs (backbone, preprocess)
TYPE_HEAD_INPUT = EMBEDDING.name
TYPE_HEAD_OUTPUT = "TYPE_PROBS"  # softmax over the category's `types`, in categories.toml order (in the head file)
TYPE_PROBS_PREFIX = TYPE_HEAD_OUTPUT + "_"  # the vision model's output of a category's head: type_probs_output


def type_probs_output(category: str) -> str:
    """The vision model's (and the analyze ensemble's) output for a category's type head: TYPE_PROBS_<category>."""
    return TYPE_PROBS_PREFIX + category


# A compliance check's head (training/compliance_head.py): EMBEDDING -> [1], its score (0.5 at its operating point).
COMPLIANCE_HEAD_OUTPUT = "COMPLIANCE"
COMPLIANCE_PREFIX = COMPLIANCE_HEAD_OUTPUT + "_"  # the vision model's output of a check: compliance_output


def compliance_output(check: str) -> str:
    """The vision model's (and the analyze ensemble's) output for a compliance check: COMPLIANCE_<check>."""
    return COMPLIANCE_PREFIX + check


# The top-level category head: softmax over categories.toml [category_head].classes, in that order.
CATEGORY_HEAD_INPUT = EMBEDDING.name
CATEGORY_HEAD_OUTPUT = "CATEGORY_PROBS"


# The search head: EMBEDDING -> SEARCH_EMBEDDING [EMBEDDING_DIM], L2-normalised, trained for retrieval (shop photo ->
# catalog picture of the same product). The visual-search index stores it; everything else keeps EMBEDDING.
SEARCH_HEAD_INPUT = EMBEDDING.name
SEARCH_EMBEDDING = TensorSpec("SEARCH_EMBEDDING", "float32", (EMBEDDING_DIM,))
