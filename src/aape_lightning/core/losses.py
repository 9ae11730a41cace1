"""AAPE's two losses: the aggregator's CLIP reward and the generator's distillation."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


def clip_reward_loss(image: Tensor, aggregated: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE between f(x_i) and p_a(x_j) over the batch, temperature tau."""
    logits = logit_scale * image.float() @ aggregated.float().t()  # (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def distillation_loss(aape: Tensor, target: Tensor, kind: Literal["mse", "cosine"] = "mse") -> Tensor:
    """|| p(x) - p_a(x) ||^2 summed over d, averaged over the batch (or 1 - cos)."""
    if kind == "mse":
        return (aape.float() - target.float()).pow(2).sum(-1).mean()
    if kind == "cosine":
        return (1 - F.cosine_similarity(aape.float(), target.float(), dim=-1)).mean()
    raise ValueError(f"distillation kind {kind!r} is not one of 'mse', 'cosine'")
