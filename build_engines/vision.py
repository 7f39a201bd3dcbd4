"""The `vision` model: the backbone and every head in ONE ONNX graph, one output per head, so each image crosses a
single model step after preprocessing (cpu: one onnxruntime session; gpu: one TensorRT engine).

    PIXELS [3, 224, 224], QUALITY_FEATURES [2]
      -> EMBEDDING [1280], QUALITY_SCORES [3], CATEGORY_PROBS [5] (when trained), TYPE_PROBS_<category> (per trained
         type head), COMPLIANCE_<check> [1] (per trained compliance head, heads/compliance_<check>.onnx),
         SEARCH_EMBEDDING [1280] (the retrieval embedding, heads/search.onnx, when trained)

The heads stay the trained files of build_engines/heads/ (tiny: a few hundred KB together); they are spliced onto the
backbone's EMBEDDING output here, their nodes prefixed with their model name so nothing collides.

int8 (cpu default): onnxruntime static quantisation (QDQ, per-channel int8 weights, uint8 activations) of the
backbone's operators after its first block; the heads stay float32 (their thresholds sit on sigmoid outputs; they cost
~nothing), and so do the stem and the first block (FLOAT_NODE_PREFIXES).
Activation ranges come from a calibration cache computed on development images by
`python -m build_engines.vision calibrate` (part of `make models`) and committed beside the heads
(heads/vision_calibration.json), keyed by the backbone's fingerprint: a repository generated on a machine without the
development data quantises identically, and a retrained backbone without a fresh calibration is served in float32
(announced) rather than with stale ranges. Accuracy deltas: MODELS.md "vision: int8".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from contract.tensors import (
    CATEGORY_HEAD_OUTPUT,
    COMPLIANCE_HEAD_PREFIX,
    EMBEDDING,
    PIXELS,
    QUALITY,
    QUALITY_FEATURES,
    QUALITY_INPUTS,
    QUALITY_OUTPUTS,
    QUALITY_SCORES,
    SEARCH_EMBEDDING,
    SEARCH_HEAD_INPUT,
    SEARCH_HEAD_MODEL,
    TensorSpec,
    compliance_output,
    type_probs_output,
)

CALIBRATION_CACHE = HEADS_DIR / "vision_calibration.json"
CALIBRATION_META = HEADS_DIR / "vision_calibration.meta.json"
# Development images the activation ranges are measured on (../shared/data): studio catalog photos and in-store
# grocery photos (the training splits, never validation), so both kinds of traffic set the ranges.
CALIBRATION_IMAGES = 384
# Kept in float32 inside the int8 model: the stem convolution (it reads the normalised pixels) and the first block at
# 112x112. Quantising them cost the most fidelity (embedding cosine to float32 p1 0.964 -> 0.992, min 0.945 -> 0.988
# on 337 held-out development images) for ~10% of the int8 speed-up (MODELS.md "vision: int8").
FLOAT_NODE_PREFIXES = ("/_conv_stem", "/_blocks.0/")


@dataclass(frozen=True)
class SplicedHead:
    """A trained head file, how its inputs connect to the graph, and the name its single output gets."""

    model: str  # prefix of its nodes, e.g. "quality", "type_apparel"
    path: Path
    output: str  # the vision model's output name for it


def onnx_output_width(path: Path) -> int:
    import onnx

    return onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim[-1].dim_value


def check_quality_head(source: Path) -> None:
    """Refuse a learned quality head whose tensors do not match the contract (a stale file)."""
    import onnx

    names = tuple(i.name for i in onnx.load(str(source)).graph.input)
    width = onnx_output_width(source)
    if names != QUALITY_INPUTS or width != len(QUALITY_OUTPUTS):
        raise ValueError(
            f"{source} has inputs {names} and {width} outputs; the contract wants {QUALITY_INPUTS} -> "
            f"{len(QUALITY_OUTPUTS)} ({', '.join(QUALITY_OUTPUTS)}): retrain with python -m training.quality_heads"
        )


def check_head_width(source: Path, width: int) -> None:
    """Refuse a trained head whose output does not match the categories file (file edited since)."""
    got = onnx_output_width(source)
    if got != width:
        raise ValueError(f"{source.name} outputs {got} classes but categories.toml lists {width}: retrain the head")


def quality_head(scratch: Path, heads_dir: Path) -> SplicedHead:
    """The learned quality head (heads/quality.onnx: EMBEDDING + QUALITY_FEATURES -> blur, small_object, placeholder)
    when present; otherwise the interim classical export (QUALITY_FEATURES -> blur, small_object), announced."""
    from build_engines.quality import CLASSICAL_OUTPUTS

    learned = heads_dir / f"{QUALITY}.onnx"
    if learned.is_file():
        check_quality_head(learned)
        return SplicedHead(QUALITY, learned, QUALITY_SCORES.name)
    print(
        f"quality: {learned} not found; serving the INTERIM CLASSICAL quality measures ({', '.join(CLASSICAL_OUTPUTS)}"
        "; no placeholder score). Train the learned head with `python -m training.quality_heads`.",
        file=sys.stderr,
    )
    classical = scratch / "classical_quality.onnx"
    export_quality(classical)
    return SplicedHead(QUALITY, classical, QUALITY_SCORES.name)


def vision_heads(scratch: Path, heads_dir: Path = HEADS_DIR) -> list[SplicedHead]:
    """Every head the vision model carries: quality (always), the category head when trained and declared in
    categories.toml [category_head], and a type head for each category whose trained file is in `heads_dir`."""
    from contract.categories_file import load_catalog

    catalog = load_catalog()
    heads = [quality_head(scratch, heads_dir)]
    category_head = catalog.category_head
    if category_head is not None and (heads_dir / f"{category_head.model}.onnx").is_file():
        source = heads_dir / f"{category_head.model}.onnx"
        check_head_width(source, len(category_head.classes))
        heads.append(SplicedHead(category_head.model, source, CATEGORY_HEAD_OUTPUT))
    else:
        print(
            "category: no trained head (or no [category_head] in categories.toml); requests without a known "
            "category fall back to `default`",
            file=sys.stderr,
        )
    for category in (catalog.get(name) for name in catalog.names()):
        source = heads_dir / f"{category.head}.onnx"
        if source.is_file():
            check_head_width(source, len(category.types))
            heads.append(SplicedHead(category.head, source, type_probs_output(category.name)))
    return heads + search_head(heads_dir) + compliance_heads(heads_dir)


def search_head(heads_dir: Path) -> list[SplicedHead]:
    """The retrieval embedding head (heads/search.onnx, python -m training.search_head) when trained; without it
    the gateway indexes EMBEDDING (announced here and in its /readyz)."""
    import onnx

    source = heads_dir / f"{SEARCH_HEAD_MODEL}.onnx"
    if not source.is_file():
        print(f"search: {source} not found; the search index stores {EMBEDDING.name}", file=sys.stderr)
        return []
    inputs = tuple(i.name for i in onnx.load(str(source)).graph.input)
    if inputs != (SEARCH_HEAD_INPUT,) or onnx_output_width(source) != SEARCH_EMBEDDING.dims[0]:
        raise ValueError(f"{source.name}: the search head maps {SEARCH_HEAD_INPUT} to {SEARCH_EMBEDDING.dims}")
    return [SplicedHead(SEARCH_HEAD_MODEL, source, SEARCH_EMBEDDING.name)]


def compliance_heads(heads_dir: Path) -> list[SplicedHead]:
    """Every trained compliance check (heads/compliance_<check>.onnx, python -m training.compliance_head), by name."""
    import onnx

    heads = []
    for source in sorted(heads_dir.glob(f"{COMPLIANCE_HEAD_PREFIX}*.onnx")):
        model = source.stem
        check = model.removeprefix(COMPLIANCE_HEAD_PREFIX)
        inputs = tuple(i.name for i in onnx.load(str(source)).graph.input)
        if inputs != (EMBEDDING.name,) or onnx_output_width(source) != 1:
            raise ValueError(f"{source.name}: a compliance head reads {EMBEDDING.name} and scores it [1], got {inputs}")
        heads.append(SplicedHead(model, source, compliance_output(check)))
    return heads


def head_outputs(heads: list[SplicedHead]) -> list[TensorSpec]:
    """The vision model's output tensors for `heads` (float32, one row per image)."""
    return [TensorSpec(h.output, "float32", (onnx_output_width(h.path),)) for h in heads]


def export_backbone(path: Path, weights: str | None) -> None:
    import torch

    from build_engines.backbone import load_backbone
    from build_engines.export import export_onnx, max_parity_error

    module = load_backbone(weights)
    export_onnx(module, torch.zeros(2, *PIXELS.dims), path, PIXELS.name, EMBEDDING.name)
    error = max_parity_error(module, path, torch.randn(4, *PIXELS.dims, generator=torch.Generator().manual_seed(0)))
    if error > 1e-4:
        raise RuntimeError(f"backbone ONNX parity error {error:.2e} > 1e-4")


def cached_backbone_export(cache_dir: Path) -> Path:
    """The float32 backbone ONNX of the default weights, exported once per weights fingerprint into `cache_dir`: for
    benchmarks and tests that need the real backbone without a fresh torch export every time."""
    from build_engines.backbone import backbone_fingerprint

    path = cache_dir / f"backbone-fp32-{backbone_fingerprint()}.onnx"
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        export_backbone(partial, None)
        partial.replace(path)
    return path


def export_quality(path: Path) -> None:
    import torch

    from build_engines.export import export_onnx
    from build_engines.quality import ClassicalQualityHead, load_params

    export_onnx(
        ClassicalQualityHead(load_params()),
        torch.ones(2, *QUALITY_FEATURES.dims),
        path,
        QUALITY_FEATURES.name,
        QUALITY_SCORES.name,
    )


def write_vision_onnx(
    out: Path, heads: list[SplicedHead], backbone_weights: str | None, precision: str, scratch: Path
) -> str:
    """Export the backbone, splice the heads on and write the vision model to `out` in `precision` ("int8" or
    "fp32"); returns the precision written: int8 falls back to fp32 (announced) when the committed calibration was
    made for other backbone weights."""
    import shutil

    from build_engines.backbone import backbone_fingerprint

    if precision not in ("int8", "fp32"):
        raise ValueError(f"precision must be int8 or fp32, got {precision!r}")
    backbone = scratch / "backbone.onnx"
    export_backbone(backbone, backbone_weights)
    fp32 = build_vision(backbone, heads, scratch / "vision-fp32.onnx")
    if precision == "int8":
        if calibration_matches(backbone_fingerprint(backbone_weights)):
            quantize_vision(fp32, out, heads, CALIBRATION_CACHE)
            return "int8"
        print(
            f"vision: {CALIBRATION_CACHE.name} was calibrated for other backbone weights (or is missing): serving "
            "float32. Recalibrate with `python -m build_engines.vision calibrate` (needs the development data).",
            file=sys.stderr,
        )
    shutil.copy(fp32, out)
    return "fp32"


def splice_heads(backbone, heads: list[SplicedHead]):
    """The backbone ModelProto with every head's graph attached to EMBEDDING (and QUALITY_FEATURES as a second graph
    input when a head reads it). Head tensors other than EMBEDDING / QUALITY_FEATURES are prefixed `<model>/`."""
    import onnx
    from onnx import compose

    graph = backbone.graph
    if [o.name for o in graph.output] != [EMBEDDING.name]:
        raise ValueError(f"backbone outputs {[o.name for o in graph.output]}, expected [{EMBEDDING.name}]")
    shared_inputs = {EMBEDDING.name, QUALITY_FEATURES.name}
    for head in heads:
        proto = onnx.load(str(head.path))
        if proto.opset_import[0].version != backbone.opset_import[0].version:
            raise ValueError(f"{head.path.name}: opset {proto.opset_import[0].version} differs from the backbone's")
        prefixed = compose.add_prefix(proto, f"{head.model}/")
        renames = {f"{head.model}/{i.name}": i.name for i in proto.graph.input if i.name in shared_inputs}
        (head_output,) = (o.name for o in prefixed.graph.output)
        renames[head_output] = head.output
        for node in prefixed.graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
            node.output[:] = [renames.get(name, name) for name in node.output]
        graph.node.extend(prefixed.graph.node)
        graph.initializer.extend(prefixed.graph.initializer)
        for tensor in proto.graph.input:
            if tensor.name == QUALITY_FEATURES.name and all(i.name != tensor.name for i in graph.input):
                graph.input.append(tensor)
        output = onnx.ValueInfoProto()
        output.CopyFrom(prefixed.graph.output[0])
        output.name = head.output
        graph.output.append(output)
    onnx.checker.check_model(backbone)
    return backbone


def build_vision(backbone_onnx: Path, heads: list[SplicedHead], out: Path) -> Path:
    """Write the float32 vision model (backbone + heads) to `out`."""
    import onnx

    model = splice_heads(onnx.load(str(backbone_onnx)), heads)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def float_nodes(model_path: Path, heads: list[SplicedHead]) -> list[str]:
    """Names of the nodes that stay float32: every head's, and the backbone's FLOAT_NODE_PREFIXES."""
    import onnx

    prefixes = tuple(f"{h.model}/" for h in heads) + FLOAT_NODE_PREFIXES
    return [n.name for n in onnx.load(str(model_path)).graph.node if n.name.startswith(prefixes)]


def quantize_vision(fp32: Path, out: Path, heads: list[SplicedHead], calibration_cache: Path, reader=None) -> Path:
    """int8 QDQ copy of the vision model: the backbone's operators quantised with the activation ranges of
    `calibration_cache` (computed from `reader`, an onnxruntime CalibrationDataReader, when the file is absent)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="imgsel-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference + graph optimisation first (onnxruntime's recommended step before static quantisation).
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            calibration_data_reader=reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes(prepared, heads),
            calibration_cache_path=str(calibration_cache),
        )
    return out


class PreprocessedImages:
    """onnxruntime CalibrationDataReader over development images run through the production preprocessing."""

    def __init__(self, paths: list[Path], batch: int = 32):
        from preprocessing.runner import PreprocessRunner

        self.paths, self.batch = paths, batch
        self.runner = PreprocessRunner(max_batch=batch)
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = self.paths[self.position : self.position + self.batch]
        if not chunk:
            return None
        self.position += self.batch
        out = self.runner.run([np.fromfile(p, dtype=np.uint8) for p in chunk])
        keep = out["VALID"][:, 0]
        return {PIXELS.name: out[PIXELS.name][keep], QUALITY_FEATURES.name: out[QUALITY_FEATURES.name][keep]}


def calibration_paths(data: Path, count: int = CALIBRATION_IMAGES) -> list[Path]:
    """Every k-th catalog photo and grocery training photo (sorted, deterministic), about half each."""
    catalog = sorted((data / "catalog").glob("*.jpg"))
    grocery = sorted((data / "grocery" / "train").rglob("*.jpg"))
    half = count // 2
    pick = lambda paths, n: paths[:: max(1, len(paths) // n)][:n]  # noqa: E731
    return pick(catalog, half) + pick(grocery, count - half)


def calibrate(data: Path, fp32: Path, heads: list[SplicedHead], fingerprint: str) -> dict:
    """(Re)compute the committed calibration cache from development images; returns its metadata."""
    paths = calibration_paths(data)
    if not paths:
        raise FileNotFoundError(f"no development images under {data} (catalog/*.jpg, grocery/train/**/*.jpg)")
    CALIBRATION_CACHE.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgsel-calib-") as scratch:
        quantize_vision(fp32, Path(scratch) / "int8.onnx", heads, CALIBRATION_CACHE, PreprocessedImages(paths))
    meta = {
        "backbone_fingerprint": fingerprint,
        "images": len(paths),
        "sources": "catalog/*.jpg and grocery/train/**/*.jpg of ../shared/data, every k-th file (sorted)",
        "method": "MinMax, QDQ, per-channel int8 weights, uint8 activations; heads, stem and block 0 in float32",
    }
    CALIBRATION_META.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def calibration_matches(fingerprint: str) -> bool:
    if not (CALIBRATION_CACHE.is_file() and CALIBRATION_META.is_file()):
        return False
    return json.loads(CALIBRATION_META.read_text()).get("backbone_fingerprint") == fingerprint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["calibrate"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args(argv)
    from build_engines.backbone import backbone_fingerprint

    with tempfile.TemporaryDirectory(prefix="imgsel-vision-") as scratch:
        backbone = Path(scratch) / "backbone.onnx"
        export_backbone(backbone, None)
        heads = vision_heads(Path(scratch))
        fp32 = build_vision(backbone, heads, Path(scratch) / "vision.onnx")
        meta = calibrate(args.data, fp32, heads, backbone_fingerprint())
    print(json.dumps(meta, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
