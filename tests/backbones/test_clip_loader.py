import pytest
import torch

from aape_lightning.backbones import FrozenCLIP, build_tiny_clip, resolve_backbone
from aape_lightning.backbones.clip_loader import clip
from aape_lightning.errors import BackboneError

clip_tokenize = clip.tokenize


@pytest.mark.parametrize("layout", ["aape", "openai"])
def test_file_layouts_load_the_same_architecture(tmp_path, layout):
    path = build_tiny_clip(tmp_path / f"{layout}.pt", seed=3, layout=layout)
    model, spec = resolve_backbone(str(path), tmp_path)
    assert model.text_projection.shape == (64, 64) and model.visual.input_resolution == 32
    assert next(model.parameters()).dtype == torch.float32
    assert spec.path == str(path.resolve()) and len(spec.sha256) == 64


def test_openai_layout_fp32_file_loads_bit_exactly(tmp_path):
    """An fp32 OpenAI-layout state dict comes back value for value (no fp16 round trip on the way)."""
    path = build_tiny_clip(tmp_path / "o.pt", seed=3, layout="openai")
    saved = torch.load(path, weights_only=True)
    model, _ = resolve_backbone(str(path), tmp_path)
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    changed = [k for k in saved if not torch.equal(saved[k], loaded[k])]
    assert changed == [] and all(v.dtype == torch.float32 for v in loaded.values() if v.is_floating_point())
    a, _ = resolve_backbone(str(build_tiny_clip(tmp_path / "a.pt", seed=3)), tmp_path)
    tokens = clip_tokenize(["a photo of a dog."], context_length=model.context_length)
    assert torch.equal(a.encode_text(tokens), model.encode_text(tokens))  # same as this project's format


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_openai_layout_torchscript_file_loads_bit_exactly(tmp_path):
    """A TorchScript archive (OpenAI's release format) holding fp32 weights keeps them exactly too."""
    path = build_tiny_clip(tmp_path / "o.pt", seed=3, layout="openai")
    saved = torch.load(path, weights_only=True)
    model, _ = resolve_backbone(str(path), tmp_path)
    scripted = torch.jit.trace_module(model, {"encode_text": clip_tokenize(["a dog."], context_length=model.context_length)}, check_trace=False)
    scripted.save(str(tmp_path / "scripted.pt"))
    again, _ = resolve_backbone(str(tmp_path / "scripted.pt"), tmp_path)
    assert all(torch.equal(saved[k], v) for k, v in again.state_dict().items())


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
