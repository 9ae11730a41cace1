"""KgCoOp's knowledge loss against its formula, w * mean_k (1 - cos(c_k, t_k)), computed here by hand."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.heads import ContextOptions, KgCoOpHead

CLASSES = ["red square", "green circle", "blue triangle", "sea lion"]


@pytest.mark.parametrize(("weight", "w"), [({"weight": 3.0}, 3.0), ({}, 8.0)])  # KgCoOp's default: w = 8
def test_knowledge_loss_is_the_mean_per_class_cosine_distance(tiny_clip, tmp_path, weight, w):
    backbone = FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")
    head = KgCoOpHead(backbone, ContextOptions(ctx_init="a photo of a"), **weight)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    torch.manual_seed(0)
    head.context.ctx.data += torch.randn_like(head.context.ctx) * 0.5  # away from the hand-written prompt
    head.train()
    image = torch.randn(2, backbone.embed_dim)
    loss = head(image, "all").losses["knowledge"]

    c = head.context("all").detach()  # (K, d) the learned prompts' text features
    t = backbone.encode_text([f"a photo of a {name}." for name in CLASSES])  # (K, d) the hand-written ones
    cos = [(c[k] * t[k]).sum() / (c[k].norm() * t[k].norm()) for k in range(len(CLASSES))]  # one per class
    expected = w * sum(1 - x.item() for x in cos) / len(CLASSES)
    assert expected > 1e-3  # the perturbation moved every class away from its template
    assert loss.item() == pytest.approx(expected, rel=1e-4)
