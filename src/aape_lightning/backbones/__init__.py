"""Frozen image-text backbones (clip-anytorch, OpenCLIP, Hugging Face) behind one interface; tiny test models."""

from aape_lightning.backbones.base import FrozenBackbone
from aape_lightning.backbones.clip_loader import REGISTRY, BackboneSpec, default_cache_dir, resolve_backbone, save_clip
from aape_lightning.backbones.frozen_clip import FrozenCLIP, context_layout
from aape_lightning.backbones.hf_backbone import HFBackbone
from aape_lightning.backbones.load import load_backbone
from aape_lightning.backbones.open_clip_backbone import OpenCLIPBackbone
from aape_lightning.backbones.text_cache import TextFeatureCache
from aape_lightning.backbones.tiny_clip import TINY_CONFIG, build_tiny_clip
from aape_lightning.errors import BackboneError

__all__ = [
    "REGISTRY",
    "TINY_CONFIG",
    "BackboneError",
    "BackboneSpec",
    "FrozenBackbone",
    "FrozenCLIP",
    "HFBackbone",
    "OpenCLIPBackbone",
    "TextFeatureCache",
    "context_layout",
    "build_tiny_clip",
    "default_cache_dir",
    "load_backbone",
    "resolve_backbone",
    "save_clip",
]
