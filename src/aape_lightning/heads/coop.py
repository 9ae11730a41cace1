"""CoOp (Zhou et al., IJCV 2022): class weights from a learned context before each class name."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.base import ClassificationHead, HeadOutput, zero_shot_logits
from aape_lightning.heads.prompt_learner import PromptLearner


class CoOpHead(ClassificationHead):
    """Logits ``tau * cos(f(x), g([ctx][class]))`` with the context learned, CLIP frozen.

    Args:
        backbone: the frozen CLIP (given by the task).
        n_ctx: context length (CoOp: 16; ignored with ``ctx_init``).
        ctx_init: initial words, e.g. "a photo of a"; None for random N(0, 0.02).
        class_specific: class-specific context (CSC); classes never trained keep the initial one.
        class_token_position: "end", "middle" or "front".
    """

    def __init__(
        self,
        backbone: FrozenCLIP,
        n_ctx: int = 16,
        ctx_init: str | None = None,
        class_specific: bool = False,
        class_token_position: Literal["end", "middle", "front"] = "end",
    ) -> None:
        super().__init__(backbone)
        self.prompt_learner = PromptLearner(backbone, n_ctx, ctx_init, class_specific, class_token_position)

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        super().set_classes(name, classnames, template)
        self.prompt_learner.add_class_set(name, classnames)

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        weights = self.prompt_learner(class_set)  # (K, d)
        return HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))
