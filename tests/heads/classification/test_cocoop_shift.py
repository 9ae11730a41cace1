"""CoCoOp's image-conditioned context v_m(x) = v_m + pi(x), checked against CoOp given v_m + pi(x) by hand."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.heads import CoCoOpHead, ContextOptions, CoOpHead

CLASSES = ["red square", "green circle", "blue triangle"]


@pytest.mark.parametrize("class_specific", [False, True])
def test_the_meta_net_output_is_added_to_every_context_vector(tiny_clip, tmp_path, class_specific):
    backbone = FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")
    options = ContextOptions(n_ctx=2, class_specific=class_specific)
    torch.manual_seed(0)
    cocoop, coop = CoCoOpHead(backbone, options), CoOpHead(backbone, options)
    for head in (cocoop, coop):
        head.set_classes("all", CLASSES, "a photo of a {}.")
    shift = torch.randn(backbone.token_width) * 0.5  # pi(x) for every image: the meta-net reduced to its last bias
    with torch.no_grad():
        for p in cocoop.meta_net.parameters():
            p.zero_()
        cocoop.meta_net[-1].bias.copy_(shift)
        learned = cocoop.context.context("all")  # (n, w) or (K, n, w)
        coop.context.context("all").copy_(learned + shift)  # CoOp with v_m + pi(x), written out
    image = torch.nn.functional.normalize(torch.randn(2, backbone.embed_dim), dim=-1)
    assert torch.allclose(cocoop(image, "all").logits, coop(image, "all").logits, atol=1e-4)
