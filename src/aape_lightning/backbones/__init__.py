"""Frozen CLIP backbones: loading by name or file, encoding, the text-feature cache, tiny test models."""

from aape_lightning.backbones.clip_loader import REGISTRY, BackboneSpec, default_cache_dir, resolve_backbone, save_clip
from aape_lightning.backbones.frozen_clip import FrozenCLIP, context_layout
from aape_lightning.backbones.text_cache import TextFeatureCache
from aape_lightning.backbones.tiny_clip import TINY_CONFIG, build_tiny_clip
from aape_lightning.errors import BackboneError

__all__ = [
    "REGISTRY",
    "TINY_CONFIG",
    "BackboneError",
    "BackboneSpec",
    "FrozenCLIP",
    "TextFeatureCache",
    "context_layout",
    "build_tiny_clip",
    "default_cache_dir",
    "resolve_backbone",
    "save_clip",
]
