"""Zero-shot CLIP: class weights are the frozen text features of a template; nothing trains."""

from __future__ import annotations

from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput, zero_shot_logits


class ZeroShotHead(ClassificationHead):
    """Logits ``tau * cos(f(x), g(template(class))) + b`` (``b``: the backbone's logit bias, SigLIP's; else 0).

    Args:
        backbone: the frozen CLIP (given by the task).
        templates: several templates (each with ``{}``) to ensemble, e.g. CLIP's ImageNet set;
            default: the dataset's one template.
    """

    def __init__(self, backbone: FrozenCLIP, templates: list[str] | None = None, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        bad = [t for t in templates or [] if "{}" not in t]
        if bad:
            raise ValueError(f"ZeroShotHead: templates without '{{}}' for the class name: {bad}")
        self.templates = list(templates) if templates else None

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        logits = zero_shot_logits(image, self.class_features(class_set), self.backbone.logit_scale)  # (B, K)
        # the bias is 0-d: added to (B, K) it keeps the logits' dtype, as a Python number would
        return HeadOutput(logits + self.backbone.logit_bias)
