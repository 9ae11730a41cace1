"""The generator h: image feature -> AAPE, the only prompt-side part kept at inference."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Generator(nn.Module):
    """p(x) = normalise(h(f(x))), h "two fully connected layers and ReLU": d -> hidden -> d.

    With d = 512 and hidden = 32, h has 2 * 512 * 32 + 32 + 512 = 33,312 parameters (the
    paper's 33.3k). The output is an fp32 unit vector whatever the input dtype.

    Args:
        dim: embedding width d (linked from the backbone).
        hidden: width of the hidden layer (the paper's 32).
        dropout: dropout on the hidden layer.
    """

    def __init__(self, dim: int, hidden: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"Generator: hidden={hidden} must be at least 1")
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, image: Tensor) -> Tensor:
        return F.normalize(self.net(image.to(self.net[0].weight.dtype)).float(), dim=-1)
