"""KgCoOp (Yao et al., CVPR 2023): CoOp kept close to the hand-written prompt's text features."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.base import HeadOutput, zero_shot_logits
from aape_lightning.heads.coop import CoOpHead


class KgCoOpHead(CoOpHead):
    """CoOp plus ``w * mean_k (1 - cos(learned c_k, template c_k))`` while training.

    Args:
        backbone: the frozen CLIP (given by the task).
        n_ctx: context length (ignored with ``ctx_init``).
        ctx_init: initial words (KgCoOp: "a photo of a").
        class_specific: class-specific context.
        class_token_position: "end", "middle" or "front".
        weight: w, the knowledge-guidance weight (KgCoOp: 8.0).
    """

    def __init__(
        self,
        backbone: FrozenCLIP,
        n_ctx: int = 4,
        ctx_init: str | None = "a photo of a",
        class_specific: bool = False,
        class_token_position: Literal["end", "middle", "front"] = "end",
        weight: float = 8.0,
    ) -> None:
        super().__init__(backbone, n_ctx, ctx_init, class_specific, class_token_position)
        self.weight = weight

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        weights = self.prompt_learner(class_set)  # (K, d)
        out = HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))
        if self.training:
            template = self.class_features(class_set)  # (K, d), the hand-written prompt
            out.losses["knowledge"] = self.weight * (1 - F.cosine_similarity(weights, template, dim=-1)).mean()
        return out
