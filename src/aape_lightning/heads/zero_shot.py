"""Zero-shot CLIP: class weights are the frozen text features of a template; nothing trains."""

from __future__ import annotations

from torch import Tensor

from aape_lightning.heads.base import ClassificationHead, HeadOutput, zero_shot_logits


class ZeroShotHead(ClassificationHead):
    """Logits ``tau * cos(f(x), g(template(class)))``."""

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        return HeadOutput(zero_shot_logits(image, self.class_features(class_set), self.backbone.logit_scale))
