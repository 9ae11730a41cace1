"""CuPL (Pratt et al., ICCV 2023): class weights from LLM-written descriptions; nothing trains."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput, zero_shot_logits


class CuPLHead(ClassificationHead):
    """``w_k = normalise(mean of the normalised embeddings of class k's prompts)``.

    Needs the prompt bank for every class set it scores, also at test time.

    Args:
        backbone: the frozen CLIP (given by the task).
        with_template: also average in the class template's feature (CuPL's "full" variant).
    """

    prompt_sets = "all"

    def __init__(self, backbone: FrozenCLIP, with_template: bool = False, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        self.with_template = with_template
        self._weights: dict[str, Tensor] = {}

    def set_prompts(self, class_set: str, embeddings: Tensor, mask: Tensor) -> None:
        total = (embeddings * mask[..., None]).sum(1)  # (K, d): class k's real prompts summed, padding left out
        if self.with_template:  # the template's feature as one more prompt
            template = self.class_features(class_set).to(total.device)  # (K, d)  # pragma: no mutate: the device: the same on the CPU tests run on
            total = total + template
        # normalise(sum) is normalise(mean): dividing by a class's (positive) prompt count changes no direction
        self._weights[class_set] = F.normalize(total, dim=-1)  # pragma: no mutate: on (K, d) dim -1 is dim 1, normalize's default

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        if class_set not in self._weights:
            raise KeyError(f"CuPLHead: no prompts were loaded for class set {class_set!r} (set data.prompts)")
        weights = self._weights[class_set].to(image.device)  # (K, d)  # pragma: no mutate: the device: the same on the CPU tests run on
        return HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))



