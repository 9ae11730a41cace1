"""Aggregators: an image-conditioned summary p_a(x) of a variable set of prompt embeddings.

Every variant takes ``image (B, d)``, ``prompts (B, M, d)`` and ``mask (B, M)`` (True where a
prompt is real, False for padding) and returns ``(B, d)`` unit vectors. None of them uses a
prompt's position, so each is invariant to permuting the prompts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Aggregator(nn.Module):
    """Base class: pick an implementation in YAML with ``class_path``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError


def _masked_mean(prompts: Tensor, mask: Tensor) -> Tensor:
    w = mask.to(prompts.dtype).unsqueeze(-1)  # (B, M, 1)
    return (prompts * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, d)


class AttentionAggregator(Aggregator):
    """Default: multi-head attention, query from f(x), keys and values from the prompts.

    Args:
        dim: embedding width d (linked from the backbone).
        num_heads: attention heads; must divide ``dim``.
        dropout: attention dropout.
    """

    def __init__(self, dim: int, num_heads: int = 8, dropout: float = 0.0) -> None:
        super().__init__(dim)
        if dim % num_heads:
            raise ValueError(f"AttentionAggregator: num_heads={num_heads} does not divide dim={dim}; pick a divisor")
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        # Unit vectors have entries ~ 1/sqrt(d): rescale to ~1 so attention is not uniform at init.
        scale = self.dim**0.5
        query = image.unsqueeze(1) * scale  # (B, 1, d)
        keys = prompts * scale  # (B, M, d)
        out, _ = self.attn(query, keys, keys, key_padding_mask=~mask, need_weights=False)  # (B, 1, d)
        return F.normalize(out.squeeze(1).float(), dim=-1)


class MeanAggregator(Aggregator):
    """Ablation: the plain average of the prompt embeddings (nothing learned)."""

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        return F.normalize(_masked_mean(prompts, mask).float(), dim=-1)


class RandomAggregator(Aggregator):
    """Ablation: one real prompt drawn at random per image while training; the mean in eval.

    Eval uses the mean so that validation is deterministic (the target is only used in
    training anyway).
    """

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        if not self.training:
            return F.normalize(_masked_mean(prompts, mask).float(), dim=-1)
        scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)  # (B, M)
        pick = scores.argmax(dim=1)  # (B,)
        chosen = prompts[torch.arange(prompts.shape[0], device=prompts.device), pick]  # (B, d)
        return F.normalize(chosen.float(), dim=-1)


class MLPAggregator(Aggregator):
    """Ablation: a learned score per prompt from its own embedding, softmax-weighted (not image-conditioned).

    Args:
        dim: embedding width d.
        hidden: hidden width of the scoring MLP (default d // 4).
    """

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__(dim)
        hidden = hidden or max(dim // 4, 1)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        logits = self.score(prompts).squeeze(-1).float().masked_fill(~mask, float("-inf"))  # (B, M)
        weights = logits.softmax(dim=1).unsqueeze(-1)  # (B, M, 1)
        return F.normalize((weights * prompts.float()).sum(1), dim=-1)
