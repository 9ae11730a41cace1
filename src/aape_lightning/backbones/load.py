"""Any backbone name -> its family's frozen backbone: the one entry point tasks call."""

from __future__ import annotations

from pathlib import Path

from aape_lightning.backbones.base import FrozenBackbone
from aape_lightning.backbones.clip_loader import default_cache_dir
from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.backbones.hf_backbone import SCHEME as HF
from aape_lightning.backbones.hf_backbone import HFBackbone
from aape_lightning.backbones.open_clip_backbone import SCHEME as OPEN_CLIP
from aape_lightning.backbones.open_clip_backbone import OpenCLIPBackbone

# A name's scheme picks the library; names without one are clip-anytorch's (OpenAI names, files, "demo").
FAMILIES: dict[str, type[FrozenBackbone]] = {OPEN_CLIP: OpenCLIPBackbone, HF: HFBackbone}


def load_backbone(name: str, cache_dir: str | Path | None = None) -> FrozenBackbone:
    """``name`` (``ViT-B/16``, a CLIP file, ``demo``, ``open_clip:...``, ``hf:...``) loaded frozen on the CPU in fp32.

    Text features cache under ``cache_dir`` (default: $AAPE_CACHE_DIR, else $XDG_CACHE_HOME/aape),
    keyed by the weights' hash, so two backbones never share cached features.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    family = next((cls for scheme, cls in FAMILIES.items() if name.startswith(scheme)), FrozenCLIP)
    return family.load(name, cache_dir)
