"""Frozen causal LMs and LiMBeR's prefix LM (captioning and VQA); the demo LM's builder lives in demo/."""

from aape_lightning.language.frozen_lm import LM_REGISTRY, FrozenLM, LMSpec, resolve_lm, save_lm
from aape_lightning.language.prefix_lm import PrefixLM

__all__ = ["LM_REGISTRY", "FrozenLM", "LMSpec", "PrefixLM", "resolve_lm", "save_lm"]
