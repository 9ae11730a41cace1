"""The task-agnostic AAPE core: prompt bank, prompt cache, aggregators, generator, losses."""

from aape_lightning.core.aape import AAPECore, AAPEOutput
from aape_lightning.core.aggregator import (
    Aggregator,
    AttentionAggregator,
    MeanAggregator,
    MLPAggregator,
    RandomAggregator,
)
from aape_lightning.core.generator import Generator
from aape_lightning.core.losses import clip_reward_loss, distillation_loss
from aape_lightning.core.prompt_bank import pad_prompt_embeddings, prompts_for_classes, read_prompt_file
from aape_lightning.core.prompt_cache import PromptCache
from aape_lightning.core.prompt_matching import PromptMatch, match_prompts, resolve_prompts
from aape_lightning.errors import PromptBankError

__all__ = [
    "AAPECore",
    "AAPEOutput",
    "Aggregator",
    "AttentionAggregator",
    "Generator",
    "MLPAggregator",
    "MeanAggregator",
    "PromptBankError",
    "PromptCache",
    "PromptMatch",
    "RandomAggregator",
    "clip_reward_loss",
    "distillation_loss",
    "match_prompts",
    "pad_prompt_embeddings",
    "prompts_for_classes",
    "read_prompt_file",
    "resolve_prompts",
]
