"""OpenAI's CLIP through clip-anytorch (by name, OpenAI-layout file, or this project's format) as a frozen backbone."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from aape_lightning.backbones.base import (  # noqa: F401 (re-exported: the LM wrapper shares the hooks)
    FrozenBackbone,
    _drop_backbone_weights,
    _ignore_missing_backbone_weights,
    _remember_prefix,
    context_layout,
)
from aape_lightning.backbones.clip_loader import clip, default_cache_dir, resolve_backbone


class FrozenCLIP(FrozenBackbone):
    """Wraps a clip-anytorch model (see ``FrozenBackbone`` for the contract)."""

    family = "clip-anytorch"

    @classmethod
    def load(cls, name_or_path: str, cache_dir: str | Path | None = None) -> FrozenCLIP:
        """Resolve ``name_or_path`` (see ``resolve_backbone``); text embeddings cache under ``cache_dir``."""
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        model, spec = resolve_backbone(name_or_path, cache_dir)
        return cls(model, spec, cache_dir)

    # -- sizes, read from the weights, never assumed ---------------------------------
    @property
    def embed_dim(self) -> int:
        return self.model.text_projection.shape[1]

    @property
    def context_length(self) -> int:
        return self.model.context_length

    @property
    def image_resolution(self) -> int:
        return self.model.visual.input_resolution

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.model.token_embedding

    # -- the model-specific pieces -----------------------------------------------------
    def token_count(self, text: str) -> int:
        """Tokens ``text`` takes in the text context, SOS and EOT included."""
        return len(clip.clip._tokenizer.encode(text)) + 2

    def _token_ids(self, texts: list[str]) -> Tensor:
        return clip.tokenize(texts, context_length=self.context_length)

    def _image_forward(self, images: Tensor) -> Tensor:
        return self.model.encode_image(images)

    def _text_forward(self, tokens: Tensor) -> Tensor:
        return self.model.encode_text(tokens)  # pooled at EOT, the largest id in CLIP's vocabulary
