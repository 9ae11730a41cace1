"""Linear probe: logistic regression on frozen image features (scores its training classes only)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput


class LinearProbeHead(ClassificationHead):
    """``logits = W f(x) + b`` for the first class set it is given (the training set).

    Args:
        backbone: the frozen CLIP (given by the task).
        init: "zeros" (a plain probe) or "zero_shot" (W starts at tau * the template features).
        train_set: the class set the probe is built for ("base" in base-to-new, "all" otherwise).
    """

    def __init__(
        self, backbone: FrozenCLIP, init: Literal["zeros", "zero_shot"] = "zeros", train_set: str | None = None, **kwargs
    ) -> None:
        super().__init__(backbone, **kwargs)
        if init not in ("zeros", "zero_shot"):
            raise ValueError(f"LinearProbeHead: init {init!r} is not one of 'zeros', 'zero_shot'")
        self.init, self.train_set = init, train_set
        self.linear: nn.Linear | None = None

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        super().set_classes(name, classnames, template)
        if self.linear is None and (self.train_set is None or name == self.train_set):
            self.train_set = name
            self.linear = nn.Linear(self.backbone.embed_dim, len(classnames)).to(self.backbone.device)  # pragma: no mutate: the device: the same on the CPU tests run on
            nn.init.zeros_(self.linear.bias)
            with torch.no_grad():
                if self.init == "zero_shot":
                    self.linear.weight.copy_(self.backbone.logit_scale * self.class_features(name))
                else:
                    nn.init.zeros_(self.linear.weight)

    @property
    def trains(self) -> bool:
        return True  # its layer is built once the training classes are known

    def supports(self, class_set: str) -> bool:
        return class_set == self.train_set

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        if not self.supports(class_set) or self.linear is None:
            raise ValueError(f"a linear probe scores only its training classes ({self.train_set!r}), not {class_set!r}")
        return HeadOutput(self.linear(image.to(self.linear.weight.dtype)))
