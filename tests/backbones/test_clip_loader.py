import pytest
import torch

from aape_lightning.backbones import FrozenCLIP, build_tiny_clip, resolve_backbone
from aape_lightning.errors import BackboneError


@pytest.mark.parametrize("layout", ["aape", "openai"])
def test_file_layouts_load_the_same_architecture(tmp_path, layout):
    path = build_tiny_clip(tmp_path / f"{layout}.pt", seed=3, layout=layout)
    model, spec = resolve_backbone(str(path), tmp_path)
    assert model.text_projection.shape == (64, 64) and model.visual.input_resolution == 32
    assert next(model.parameters()).dtype == torch.float32
    assert spec.path == str(path.resolve()) and len(spec.sha256) == 64


def test_openai_layout_roundtrip_values(tmp_path):
    """The bare state dict goes through clip-anytorch's build_model (fp16 on the way), then back to fp32."""
    a, _ = resolve_backbone(str(build_tiny_clip(tmp_path / "a.pt", seed=3)), tmp_path)
    o, _ = resolve_backbone(str(build_tiny_clip(tmp_path / "o.pt", seed=3, layout="openai")), tmp_path)
    assert torch.allclose(a.text_projection, o.text_projection, atol=1e-3)


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(BackboneError, match=r"unknown backbone 'ViT-Q/99'.*ViT-B/16.*local CLIP checkpoint file"):
        resolve_backbone("ViT-Q/99", tmp_path)


def test_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError, match="bad.pt: not a CLIP checkpoint"):
        resolve_backbone(str(bad), tmp_path)


def test_offline_name_download_failure_says_where_to_put_the_file(tmp_path, monkeypatch):
    import clip

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(clip, "load", refuse)
    with pytest.raises(BackboneError, match=r"ViT-B/16.*Copy the file from https://.*ViT-B-16.pt"):
        resolve_backbone("ViT-B/16", tmp_path)


def test_frozen_clip_is_frozen_and_out_of_state_dict(tiny_clip, tmp_path):
    b = FrozenCLIP.load(str(tiny_clip), tmp_path)
    assert not any(p.requires_grad for p in b.parameters())
    b.train()
    assert not b.model.training
    assert b.state_dict() == {}
    wrapper = torch.nn.Sequential(b)
    wrapper.load_state_dict({}, strict=True)  # missing backbone weights are expected, not an error


def test_soft_context_equal_to_word_embeddings_reproduces_text_features(tiny_clip, tmp_path):
    b = FrozenCLIP.load(str(tiny_clip), tmp_path)
    tokens = b.tokenize(["a photo of a dog.", "a photo of a cat."])
    ctx = b.embed_tokens(tokens)[0, 1:5]  # (4, w): "a photo of a"
    out = b.encode_with_context(tokens, ctx)  # (2, d)
    assert torch.allclose(out, b.encode_text(["a photo of a dog.", "a photo of a cat."]), atol=1e-5)
    per_image = b.encode_with_context(tokens, ctx.expand(3, 1, 4, -1))  # (3, 2, d)
    assert per_image.shape == (3, 2, b.embed_dim)


def test_too_long_text_names_it(tiny_clip, tmp_path):
    b = FrozenCLIP.load(str(tiny_clip), tmp_path)
    with pytest.raises(ValueError, match="context length of 32 tokens"):
        b.tokenize(["word " * 40])


def test_saved_files_are_byte_identical_whatever_their_name(tmp_path):
    from aape_lightning.backbones.clip_loader import file_sha256

    a = build_tiny_clip(tmp_path / "one.pt", seed=5)
    b = build_tiny_clip(tmp_path / "sub" / "another_name.pt", seed=5)
    assert file_sha256(a) == file_sha256(b)
    assert file_sha256(a) != file_sha256(build_tiny_clip(tmp_path / "three.pt", seed=6))
