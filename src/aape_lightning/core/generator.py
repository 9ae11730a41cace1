"""The generator h: image feature -> AAPE, the only prompt-side part kept at inference."""

from __future__ import annotations

import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, PositiveInt
from torch import Tensor, nn


class Generator(nn.Module):
    """p(x) = normalise(h(f(x))), h "two fully connected layers and ReLU": d -> hidden -> d.

    With d = 512 and hidden = 32, h has 2 * 512 * 32 + 32 + 512 = 33,312 parameters (the
    paper's 33.3k). The output is an fp32 unit vector whatever the input dtype.

    Args:
        dim: embedding width d (linked from the backbone).
        hidden: width of the hidden layer (the paper's 32).
        dropout: dropout on the hidden layer.
        residual: ``p(x) = normalise(f(x) + h(f(x)))`` with h's last layer zero at start, so p(x)
            starts as the image feature itself and h learns the step from image to prompt side
            (our option; the paper is silent). Trained on a few base classes, the plain form can
            only output mixtures of those classes' prompts; the residual keeps what the image
            feature says about classes it never saw.
    """

    def __init__(self, dim: PositiveInt, hidden: PositiveInt = 32, dropout: ClosedUnitInterval = 0.0, residual: bool = False) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"Generator: hidden={hidden} must be at least 1")
        self.residual = residual
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        if residual:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, image: Tensor) -> Tensor:
        x = image.to(self.net[0].weight.dtype)  # (B, d)
        out = self.net(x)  # (B, d)
        if self.residual:
            out = out + F.normalize(x)  # (B, d) rows to unit length (normalize's dim=1)
        return F.normalize(out.float())  # (B, d) rows to unit length (normalize's dim=1)
