"""The backbone loads the packaged ImageNet weights or a user's local checkpoint, never a hub."""

from __future__ import annotations

import pytest
import torch

from build_engines.backbone import EmbeddingBackbone, load_backbone


@pytest.fixture(scope="module")
def packaged() -> EmbeddingBackbone:
    return load_backbone()


def embed(backbone: EmbeddingBackbone, seed: int = 0) -> torch.Tensor:
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return backbone(pixels)


def test_packaged_weights_give_unit_norm_embeddings(packaged):
    embedding = embed(packaged)
    assert embedding.shape == (2, 1280)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_local_checkpoint_replaces_the_weights(packaged, tmp_path):
    state = {k: v.clone() for k, v in packaged.trunk.state_dict().items()}
    state["_conv_head.weight"] = state["_conv_head.weight"] * -1.0  # a visibly different backbone
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)
    # Training scripts often save {"state_dict": ...} with the wrapper's "trunk." prefix: both forms load.
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"trunk.{k}": v for k, v in state.items()}}, wrapped)
    from_plain, from_wrapped = embed(load_backbone(plain)), embed(load_backbone(wrapped))
    torch.testing.assert_close(from_plain, from_wrapped)
    assert not torch.allclose(from_plain, embed(packaged))


def test_wrong_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_backbone(tmp_path / "nowhere.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"layer.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="lacks backbone weights"):
        load_backbone(wrong)


def test_the_committed_fine_tune_is_applied_over_imagenet_and_changes_the_fingerprint(tmp_path):
    from build_engines.backbone import FINETUNED_HEAD, backbone_fingerprint, load_backbone

    if not FINETUNED_HEAD.is_file():
        pytest.skip("no committed backbone fine-tune (python -m training.finetune_backbone)")
    tuned, plain = load_backbone(), load_backbone(finetuned=False)
    assert not torch.equal(tuned.trunk._conv_head.weight, plain.trunk._conv_head.weight)
    assert torch.equal(tuned.trunk._conv_stem.weight, plain.trunk._conv_stem.weight)  # only the last layers move
    checkpoint = tmp_path / "ckpt.pth"
    torch.save(plain.trunk.state_dict(), checkpoint)
    assert torch.equal(load_backbone(checkpoint).trunk._conv_head.weight, plain.trunk._conv_head.weight)
    assert len({backbone_fingerprint(), backbone_fingerprint(checkpoint)}) == 2
