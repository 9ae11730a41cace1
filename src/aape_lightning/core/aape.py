"""The task-agnostic AAPE core: aggregate prompts, generate the AAPE, distil one into the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from jsonargparse.typing import NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from aape_lightning.core.aggregator import Aggregator, AttentionAggregator
from aape_lightning.core.generator import Generator
from aape_lightning.core.losses import clip_score_loss, contrastive_loss, distillation_loss


@dataclass
class AAPEOutput:
    """The same structure in training and inference; losses are empty without prompts."""

    aape: Tensor  # (B, d) p(x), unit vectors
    aggregated: Tensor | None = None  # (B, d) p_a(x), only when prompts were given
    losses: dict[str, Tensor] = field(default_factory=dict)  # already weighted; sum them


class AAPECore(nn.Module):
    """Aggregator + generator + losses, knowing nothing of tasks.

    Args:
        dim: embedding width d (set by the task from the backbone).
        aggregator: how prompts are summarised into p^a (called with ``dim``); default the paper's
            one attention layer over [q ; P].
        generator: h, the AAPE generator kept at inference (called with ``dim``); default d -> 32 -> d.
        distill_weight: lambda in L = L_task + lambda * L_distill + L_agg (paper: 5, robust in [3, 9]).
        distill_kind: "mse" ``||h(x) - p^a||^2`` on unit vectors (the paper's), or "cosine" distance.
        distill_to_aggregator: let L_distill's gradient reach the aggregator (default: stop-grad,
            the aggregator learns from its reward only).
        aggregator_weight: weight of the aggregator's reward loss.
        aggregator_loss: "clip_score", the paper's reward ``s * max(cos(x, p^a), 0)`` (maximised), or
            "contrastive", a symmetric InfoNCE between images and their p^a over the batch.
        reward_scale: ``s`` of the CLIP-score reward (the paper gives none; CLIPScore's 2.5).
    """

    def __init__(
        self,
        dim: PositiveInt,
        aggregator: Callable[[int], Aggregator] = AttentionAggregator,
        generator: Callable[[int], Generator] = Generator,
        distill_weight: NonNegativeFloat = 5.0,
        distill_kind: Literal["mse", "cosine"] = "mse",
        distill_to_aggregator: bool = False,
        aggregator_weight: NonNegativeFloat = 1.0,
        aggregator_loss: Literal["clip_score", "contrastive"] = "clip_score",
        reward_scale: NonNegativeFloat = 2.5,
    ) -> None:
        super().__init__()
        self.aggregator = aggregator(dim)
        self.generator = generator(dim)
        self.distill_weight = distill_weight
        self.distill_kind = distill_kind
        self.distill_to_aggregator = distill_to_aggregator
        self.aggregator_weight = aggregator_weight
        if aggregator_loss not in ("clip_score", "contrastive"):
            raise ValueError(f"AAPECore: aggregator_loss {aggregator_loss!r} is not one of 'clip_score', 'contrastive'")
        self.aggregator_loss, self.reward_scale = aggregator_loss, reward_scale

    def forward(
        self, image: Tensor, logit_scale: Tensor, prompts: Tensor | None = None, mask: Tensor | None = None
    ) -> AAPEOutput:
        """``image (B, d)``; ``prompts (B, M, d)`` and ``mask (B, M)`` only while training."""
        aape = self.generator(image)  # (B, d)
        if prompts is None:
            return AAPEOutput(aape=aape)
        if mask is None:
            raise ValueError("AAPECore: prompts given without their padding mask")
        aggregated = self.aggregator(image, prompts, mask)  # (B, d)
        target = aggregated if self.distill_to_aggregator else aggregated.detach()
        losses = {"distill": self.distill_weight * distillation_loss(aape, target, self.distill_kind)}
        if any(p.requires_grad for p in self.aggregator.parameters()):
            if self.aggregator_loss == "clip_score":
                reward = clip_score_loss(image, aggregated, self.reward_scale)
            else:
                reward = contrastive_loss(image, aggregated, logit_scale)
            losses["aggregator"] = self.aggregator_weight * reward
        return AAPEOutput(aape=aape, aggregated=aggregated, losses=losses)
