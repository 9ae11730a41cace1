"""AAPE's losses: the aggregator's CLIP reward, a contrastive alternative, and distillation."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


def clip_score_loss(image: Tensor, aggregated: Tensor, scale: float = 2.5) -> Tensor:
    """The paper's aggregator reward, negated: ``-mean(scale * max(cos(x, p^a), 0))``.

    CLIP-S of CLIPScore (w = 2.5); minimising this maximises the reward. A pair whose cosine
    is negative contributes 0 and no gradient. O(B d).
    """
    cos = F.cosine_similarity(image.float(), aggregated.float(), dim=-1)  # (B,)
    return -(scale * cos.clamp(min=0)).mean()


def contrastive_loss(image: Tensor, aggregated: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE between f(x_i) and p^a(x_j) over the batch, at CLIP's logit scale.

    Unlike the CLIP-S reward it also pushes p^a away from the other images of the batch.
    """
    logits = logit_scale * image.float() @ aggregated.float().t()  # (B, B)
    target = torch.arange(len(logits), device=logits.device)  # (B,) the matching pairs are on the diagonal
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def distillation_loss(aape: Tensor, target: Tensor, kind: Literal["mse", "cosine"] = "mse") -> Tensor:
    """|| p(x) - p_a(x) ||^2 summed over d, averaged over the batch (or 1 - cos)."""
    if kind == "mse":
        return (aape.float() - target.float()).pow(2).sum(-1).mean()
    if kind == "cosine":
        return (1 - F.cosine_similarity(aape.float(), target.float(), dim=-1)).mean()
    raise ValueError(f"distillation kind {kind!r} is not one of 'mse', 'cosine'")
