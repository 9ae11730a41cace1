"""The task-agnostic AAPE core: aggregate prompts, generate the AAPE, distil one into the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor, nn

from aape_lightning.core.aggregator import Aggregator, AttentionAggregator
from aape_lightning.core.generator import Generator
from aape_lightning.core.losses import clip_reward_loss, distillation_loss


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
        aggregator: how prompts are summarised (called with ``dim``); default attention.
        generator: h (called with ``dim``); default a bottleneck MLP.
        distill_weight: lambda in L = L_task + lambda * L_distill + L_agg.
        distill_kind: "mse" on unit vectors, or "cosine" distance.
        distill_to_aggregator: let L_distill's gradient reach the aggregator (default: stop-grad).
        aggregator_weight: weight of the CLIP-reward loss (1.0 in the paper).
    """

    def __init__(
        self,
        dim: int,
        aggregator: Callable[[int], Aggregator] = AttentionAggregator,
        generator: Callable[[int], Generator] = Generator,
        distill_weight: float = 1.0,
        distill_kind: Literal["mse", "cosine"] = "mse",
        distill_to_aggregator: bool = False,
        aggregator_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.aggregator = aggregator(dim)
        self.generator = generator(dim)
        self.distill_weight = distill_weight
        self.distill_kind = distill_kind
        self.distill_to_aggregator = distill_to_aggregator
        self.aggregator_weight = aggregator_weight

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
            losses["aggregator"] = self.aggregator_weight * clip_reward_loss(image, aggregated, logit_scale)
        return AAPEOutput(aape=aape, aggregated=aggregated, losses=losses)
