"""Every backbone family against its library's own forward, through the heads and the task (tiny random models)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from aape_lightning.backbones import BackboneError, OpenCLIPBackbone, load_backbone
from aape_lightning.backbones.random_families import build_random_hf, build_random_open_clip
from aape_lightning.data.transforms import backbone_transform, clip_transform
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.heads import CoOpHead, ZeroShotHead
from aape_lightning.heads.classification.learned_context import ContextOptions
from tiny_world import TINY_CLASSES

WORDS = sorted({w for c in TINY_CLASSES for w in c.split()} | {"a", "photo", "of", "shape", "something"})
VISION = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
          "num_attention_heads": 2}  # fmt: skip
TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "max_position_embeddings": 24}  # fmt: skip
OPEN_CLIP = {"embed_dim": 24, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
             "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}  # fmt: skip
# OpenCLIP's SigLIP text tower: separate text module, no causal mask, last-token pooling, a logit bias
OPEN_CLIP_SIGLIP = {**OPEN_CLIP, "custom_text": True, "init_logit_bias": -10.0,
                    "text_cfg": {**OPEN_CLIP["text_cfg"], "no_causal_mask": True, "pool_type": "last", "proj_bias": True}}
FAMILIES = ["clip-anytorch", "open_clip", "open_clip-siglip", "hf-clip", "hf-siglip"]


@pytest.fixture(scope="session")
def names(tmp_path_factory, tiny_clip) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    return {
        "clip-anytorch": str(tiny_clip),
        "open_clip": "open_clip:" + str(build_random_open_clip(root / "open_clip", OPEN_CLIP)),
        "open_clip-siglip": "open_clip:" + str(build_random_open_clip(root / "open_clip_siglip", OPEN_CLIP_SIGLIP)),
        "hf-clip": "hf:" + str(build_random_hf(root / "clip", "clip", WORDS, text_config=TEXT, vision_config=VISION,
                                               projection_dim=24)),  # fmt: skip
        "hf-siglip": "hf:" + str(build_random_hf(root / "siglip", "siglip", WORDS, text_config=TEXT, vision_config=VISION)),
    }


def backbone(names, family, cache_dir):
    b = load_backbone(names[family], cache_dir)
    if getattr(b.model, "logit_bias", None) is not None:  # SigLIP's init has bias 0 and scale 1: make both matter
        b.model.logit_bias.data.fill_(-3.0)
        b.model.logit_scale.data.fill_(math.log(10.0))
    return b


def library_logits(b, images, tokens):
    """``(B, K)`` logits by the library's own forward on the same pixels and token ids."""
    if b.family == "Hugging Face transformers":
        return b.model(input_ids=tokens, pixel_values=images).logits_per_image
    if b.family == "OpenCLIP":
        return b.model.get_logits(images, tokens)[0]
    return b.model(images, tokens)[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_shot_logits_equal_the_librarys_forward(names, family, cache_dir):
    b = backbone(names, family, cache_dir)
    head = ZeroShotHead(b)
    head.set_classes("all", TINY_CLASSES, "a photo of a {}.")
    images = torch.randn(3, 3, b.image_resolution, b.image_resolution, generator=torch.Generator().manual_seed(0))
    got = head(b.encode_image(images), "all").logits  # (3, K)
    with torch.no_grad():
        want = library_logits(b, images, b.tokenize([f"a photo of a {c}." for c in TINY_CLASSES]))
    assert got.shape == (3, len(TINY_CLASSES)) and want.std() > 0
    torch.testing.assert_close(got, want.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_coop_initialised_from_the_template_equals_zero_shot(names, family, cache_dir):
    b = backbone(names, family, cache_dir)
    coop = CoOpHead(b, ContextOptions(ctx_init="a photo of a"))
    zero = ZeroShotHead(b)
    for head in (coop, zero):
        head.set_classes("all", TINY_CLASSES, "a photo of a {}.")
    image = b.encode_image(torch.randn(2, 3, b.image_resolution, b.image_resolution))
    with torch.no_grad():
        got = coop(image, "all").logits + b.logit_bias  # the bias is a constant per logit: only zero-shot adds it
    torch.testing.assert_close(got, zero(image, "all").logits, atol=1e-5, rtol=1e-5)


def test_preprocessing_comes_from_the_backbone(names, cache_dir):
    from PIL import Image

    siglip, clip = (load_backbone(names[f], cache_dir) for f in ("hf-siglip", "hf-clip"))
    assert (siglip.image_mean, siglip.image_resize_mode) == ((0.5, 0.5, 0.5), "squash")
    assert (clip.image_resize_mode, clip.image_interpolation) == ("shortest", "bicubic")
    wide = Image.new("RGB", (64, 32), (200, 10, 10))
    for b in (siglip, clip):
        assert backbone_transform(b)(wide).shape == (3, 32, 32)
    squash = clip_transform(32, (0.5,) * 3, (0.5,) * 3, resize_mode="squash")(Image.new("RGB", (64, 32), (255, 0, 0)))
    assert torch.allclose(squash[0], torch.ones(32, 32))  # the whole image, not a crop


def test_text_caches_never_mix_backbones(names, cache_dir):
    a, b = (load_backbone(names[f], cache_dir) for f in ("hf-clip", "open_clip"))
    texts = ["a photo of a red square.", "a photo of a blue triangle."]
    for m in (a, b, a):
        torch.testing.assert_close(m.text_features(texts), m.encode_text(texts))
    assert a.text_cache.path != b.text_cache.path and a.text_cache.path.is_file() and b.text_cache.path.is_file()
    assert len({load_backbone(names[f], cache_dir).spec.sha256 for f in FAMILIES}) == len(FAMILIES)


def test_a_head_the_backbone_cannot_run_is_refused_naming_both(names, cache_dir, monkeypatch):
    b = load_backbone(names["open_clip"], cache_dir)
    monkeypatch.setattr(OpenCLIPBackbone, "token_embedding", property(lambda self: None))
    with pytest.raises(BackboneError, match=r"head CoOpHead .*backbone 'open_clip:.*\(OpenCLIP\)"):
        CoOpHead(b)


@pytest.mark.parametrize("name, hint", [("hf:nobody/no-such-model", "hf download nobody/no-such-model"),
                                        ("open_clip:ViT-B-16/laion2b_s34b_b88k", "hf download"),
                                        ("open_clip:hf-hub:nobody/none", "hf download nobody/none"),
                                        ("open_clip:ViT-B-16", "name the weights")])  # fmt: skip
def test_a_name_not_in_the_local_caches_says_what_to_download(name, hint, cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    with pytest.raises(BackboneError, match=hint) as err:
        load_backbone(name, cache_dir)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("family", ["open_clip", "hf-clip", "hf-siglip"])
def test_aape_fit_test_predict_and_checkpoint_refused_on_another_backbone(names, family, tiny_dataset, tmp_path,
                                                                          cache_dir):  # fmt: skip
    from aape_lightning.cli import main
    from aape_lightning.tasks import ClassificationTask
    from cli_helpers import checkpoints, write_config

    cfg = write_config(tmp_path / "fit.yaml", names[family], tiny_dataset, tmp_path / "runs", max_epochs=1)
    assert main(["fit", "--config", str(cfg)]) == 0
    (ckpt,) = checkpoints(tmp_path / "runs")
    assert main(["test", "--config", str(cfg), "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path / "t")]) == 0
    out = tmp_path / "pred.csv"
    assert main(["predict", "--ckpt_path", str(ckpt), "--data.predict_dir", str(tiny_dataset / "images" / "red_square"),
                 "--predictions.output", str(out), "--trainer.default_root_dir", str(tmp_path / "p")]) == 0  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list((tiny_dataset / "images" / "red_square").glob("*.png")))
    other = ClassificationTask(backbone=names["clip-anytorch"])
    with pytest.raises(CheckpointMismatchError, match="set model.backbone"):
        other.on_load_checkpoint(torch.load(ckpt, map_location="cpu", weights_only=False))
