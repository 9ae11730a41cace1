"""CoCoOp (Zhou et al., CVPR 2022): CoOp's context shifted per image by a small meta-net."""

from __future__ import annotations

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput
from aape_lightning.heads.classification.learned_context import ContextOptions, LearnedContext


class CoCoOpHead(ClassificationHead):
    """Context ``ctx + pi(f(x))`` for every image, batched over images and classes.

    The text encoder runs B x K times per batch; CoCoOp's paper used batch size 1.

    Args:
        backbone: the frozen CLIP (given by the task).
        context: the learned context (CoCoOp: initialised from "a photo of a").
        meta_hidden_ratio: the meta-net's hidden width as ``d // ratio`` (CoCoOp: 16).
    """

    def __init__(
        self,
        backbone: FrozenCLIP,
        context: ContextOptions = ContextOptions(n_ctx=4, ctx_init="a photo of a"),
        meta_hidden_ratio: PositiveInt = 16,
        **kwargs,
    ) -> None:
        super().__init__(backbone, **kwargs)
        backbone.require_token_level(type(self).__name__)  # soft prompts: refused in one line where impossible
        self.context = LearnedContext(backbone, context)
        dim = backbone.embed_dim
        hidden = max(dim // meta_hidden_ratio, 1)
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, backbone.token_width))

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        super().set_classes(name, classnames, template)
        self.context.add_class_set(name, classnames)

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        shift = self.meta_net(image)  # (B, w)
        weights = self.context(class_set, shift)  # (B, K, d)
        cos = torch.einsum("bd,bkd->bk", image.float(), weights.float())  # (B, K)  # pragma: no mutate: einsum's letters may be upper case
        return HeadOutput(self.backbone.logit_scale * cos)
