"""Tiny CLIPs built by the project, for tests and quick runs; loaded through the users' path."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from aape_lightning.backbones.clip_loader import CLIP, save_clip

# Widths are multiples of 64 with heads = width / 64, so the OpenAI layout
# (clip.model.build_model infers heads that way) loads the same architecture.
TINY_CONFIG = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=1,
    vision_width=64,
    vision_patch_size=8,
    context_length=32,
    vocab_size=49408,  # the real CLIP tokenizer's vocabulary
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=1,
)


def build_tiny_clip(
    path: str | Path, seed: int = 0, layout: Literal["aape", "openai"] = "aape", **overrides: int
) -> Path:
    """Write a randomly initialised tiny CLIP to ``path``.

    ``layout="aape"`` writes this project's format (architecture recorded);
    ``layout="openai"`` writes a bare state dict as OpenAI's files hold.
    """
    config = {**TINY_CONFIG, **overrides}
    torch.manual_seed(seed)
    model = CLIP(**config).float()
    path = Path(path)
    if layout == "aape":
        return save_clip(model, path, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
