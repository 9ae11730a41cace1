"""The generator h: image feature -> AAPE, the only prompt-side part kept at inference."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Generator(nn.Module):
    """p(x) = normalise(h(f(x))) with h a two-layer bottleneck MLP.

    Args:
        dim: embedding width d (linked from the backbone).
        bottleneck: hidden width as a fraction of ``dim``.
        dropout: dropout on the hidden layer.
    """

    def __init__(self, dim: int, bottleneck: float = 0.25, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = max(int(dim * bottleneck), 1)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, image: Tensor) -> Tensor:
        return F.normalize(self.net(image).float(), dim=-1)
