"""The task-agnostic AAPE method: aggregators, generator, losses and the core that ties them."""

from aape_lightning.core.aape import AAPECore, AAPEOutput
from aape_lightning.core.aggregator import (
    Aggregator,
    AttentionAggregator,
    MeanAggregator,
    MLPAggregator,
    RandomAggregator,
)
from aape_lightning.core.generator import Generator
from aape_lightning.core.losses import clip_score_loss, contrastive_loss, distillation_loss

__all__ = [
    "AAPECore",
    "AAPEOutput",
    "Aggregator",
    "AttentionAggregator",
    "Generator",
    "MLPAggregator",
    "MeanAggregator",
    "RandomAggregator",
    "clip_score_loss",
    "contrastive_loss",
    "distillation_loss",
]
