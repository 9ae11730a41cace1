"""Zero-shot adds the backbone's logit bias (SigLIP's), in the logits' own precision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.heads import ZeroShotHead

CLASSES = ["red square", "green circle", "sea lion"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_logit_bias_is_added_to_every_logit(tiny_clip, tmp_path, dtype):
    backbone = FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")
    backbone.model.logit_bias = nn.Parameter(torch.tensor(-3.0), requires_grad=False)  # as a SigLIP model holds it
    head = ZeroShotHead(backbone)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    image = backbone.encode_image(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))  # (2, d)
    text = backbone.encode_text([f"a photo of a {c}." for c in CLASSES])  # (K, d)
    want = backbone.logit_scale * image @ text.t() - 3.0  # (2, K)
    got = head(image.to(dtype), "all").logits
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want, atol=1e-4 if dtype == torch.float32 else 0.1, rtol=1e-2)
