"""KgCoOp (Yao et al., CVPR 2023): CoOp kept close to the hand-written prompt's text features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import HeadOutput, zero_shot_logits
from aape_lightning.heads.classification.coop import CoOpHead
from aape_lightning.heads.classification.learned_context import ContextOptions


class KgCoOpHead(CoOpHead):
    """CoOp plus ``w * mean_k (1 - cos(learned c_k, template c_k))`` while training.

    Args:
        backbone: the frozen CLIP (given by the task).
        context: the learned context (KgCoOp: initialised from "a photo of a").
        weight: w, the knowledge-guidance weight (KgCoOp: 8.0).
    """

    def __init__(
        self,
        backbone: FrozenCLIP,
        context: ContextOptions = ContextOptions(n_ctx=4, ctx_init="a photo of a"),
        weight: float = 8.0,
    ) -> None:
        super().__init__(backbone, context)
        self.weight = weight

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        weights = self.context(class_set)  # (K, d)
        out = HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))
        if self.training:
            template = self.class_features(class_set)  # (K, d), the hand-written prompt
            out.losses["knowledge"] = self.weight * (1 - F.cosine_similarity(weights, template, dim=-1)).mean()
        return out
