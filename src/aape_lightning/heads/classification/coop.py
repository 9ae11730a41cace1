"""CoOp (Zhou et al., IJCV 2022): class weights from a learned context before each class name."""

from __future__ import annotations

from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput, zero_shot_logits
from aape_lightning.heads.classification.learned_context import ContextOptions, LearnedContext


class CoOpHead(ClassificationHead):
    """Logits ``tau * cos(f(x), g([ctx][class]))`` with the context learned, CLIP frozen.

    Args:
        backbone: the frozen CLIP (given by the task).
        context: the learned context (CoOp: 16 random vectors, unified, class token at the end;
            with ``class_specific`` classes never trained keep the initial context).
    """

    def __init__(self, backbone: FrozenCLIP, context: ContextOptions = ContextOptions(), **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        backbone.require_token_level(type(self).__name__)  # soft prompts: refused in one line where impossible
        self.context = LearnedContext(backbone, context)

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        super().set_classes(name, classnames, template)
        self.context.add_class_set(name, classnames)

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        weights = self.context(class_set)  # (K, d)
        return HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))
