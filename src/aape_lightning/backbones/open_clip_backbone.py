"""OpenCLIP models (``open-clip-torch``: LAION, DataComp, SigLIP, ... weights) as frozen backbones.

Names:
  ``open_clip:<model>/<tag>``     a built-in model with a pretrained tag, e.g. ``open_clip:ViT-B-16/laion2b_s34b_b88k``,
                                  read from OpenCLIP's caches (the Hugging Face cache, ``HF_HOME``, or
                                  ``~/.cache/clip`` for URL weights), never downloaded;
  ``open_clip:<model>/<file>``    a built-in model config with a local checkpoint (``open_clip:ViT-B-16//ckpt/e30.pt``);
  ``open_clip:<folder>``          a folder holding ``open_clip_config.json`` (model + preprocessing) and its weights,
                                  OpenCLIP's own layout for saved or hub models;
  ``open_clip:hf-hub:<repo>``     such a folder from the local Hugging Face cache (e.g. ``hf-hub:timm/ViT-B-16-SigLIP``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import Tensor, nn

from aape_lightning.backbones.base import FrozenBackbone
from aape_lightning.backbones.clip_loader import BackboneSpec, file_sha256
from aape_lightning.backbones.hf_backbone import SCHEME as HF_SCHEME
from aape_lightning.backbones.hf_backbone import hf_folder, token_prefix_length
from aape_lightning.errors import BackboneError

log = logging.getLogger(__name__)

SCHEME = "open_clip:"
HUB = "hf-hub:"  # OpenCLIP's own prefix for models on the Hugging Face hub
PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")  # what a pretrained tag says about its images


def weights_sha256(path: str | Path) -> str:
    """A hub-cache link points at a blob named by its SHA256 (used as is); other files are hashed."""
    real = Path(path).resolve()
    is_blob = len(real.name) == 64 and all(c in "0123456789abcdef" for c in real.name)
    return real.name if is_blob else file_sha256(real)


def cached_weights(name: str, arch: str, tag: str) -> tuple[str, dict]:
    """The local file of a pretrained tag and its config, or a one-line error saying what to download."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise BackboneError(f"backbone {name!r}: {tag!r} is neither a pretrained tag of {arch} ({tags}) nor a file")
    found, hint = None, "them"
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        hub = cfg["hf_hub"]
        repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        hits = [try_to_load_from_cache(repo, f) for f in names]
        found = next((h for h in hits if isinstance(h, str)), None)
        hint = f"`hf download {repo}` (into HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')})"
    if found is None and cfg.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        found = str(path) if path.is_file() else None
        hint = hint if cfg.get("hf_hub") else f"{cfg['url']} into {path.parent}/"
    if found is None:
        raise BackboneError(
            f"backbone {name!r}: the weights of {arch}/{tag} are not in OpenCLIP's local caches; download {hint} "
            f"where there is internet and copy them here, or pass open_clip:{arch}/<local checkpoint file>"
        )
    return found, cfg


def parse_name(name: str) -> tuple[str, str | None, str]:
    """``open_clip:...`` -> (model for ``create_model``, checkpoint file or None, the weights to hash)."""
    ref = name[len(SCHEME):]
    hub = ref.startswith(HUB)
    folder = hf_folder(HF_SCHEME + ref[len(HUB):]) if hub else Path(ref).expanduser()
    if folder.is_dir():
        if not (folder / "open_clip_config.json").is_file():
            raise BackboneError(f"backbone {name!r}: folder {folder} has no open_clip_config.json (model + preprocessing)")
        from open_clip.factory import _find_checkpoint_in_dir

        weights = _find_checkpoint_in_dir(folder)
        if weights is None:
            raise BackboneError(f"backbone {name!r}: folder {folder} has no weights (*.safetensors, *.bin, *.pth)")
        return f"local-dir:{folder.resolve()}", None, weights
    arch, _, weights = ref.partition("/")
    if not weights:
        raise BackboneError(
            f"backbone {name!r}: name the weights as open_clip:{arch}/<pretrained tag or checkpoint file> "
            f"(e.g. open_clip:ViT-B-16/laion2b_s34b_b88k), or pass open_clip:<folder with open_clip_config.json>"
        )
    return arch, weights, weights


class OpenCLIPBackbone(FrozenBackbone):
    """An OpenCLIP ``CLIP`` / ``CustomTextCLIP`` with its tokenizer and preprocessing (see ``FrozenBackbone``)."""

    family = "OpenCLIP"

    def __init__(self, model: nn.Module, tokenizer, spec: BackboneSpec, cache_dir=None) -> None:
        super().__init__(model, spec, cache_dir)
        self.tokenizer = tokenizer
        hf = getattr(tokenizer, "tokenizer", None)  # an HFTokenizer wraps a transformers tokenizer
        self.context_start = token_prefix_length(hf) if hf is not None else 1
        pre = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = pre.get("size", getattr(model.visual, "image_size", 224))
        self._resolution = int(size if isinstance(size, int) else size[0])
        self.image_mean = tuple(pre.get("mean", self.image_mean))
        self.image_std = tuple(pre.get("std", self.image_std))
        self.image_interpolation = pre.get("interpolation", "bicubic")
        self.image_resize_mode = pre.get("resize_mode", "shortest")

    @classmethod
    def load(cls, name: str, cache_dir: str | Path | None = None) -> OpenCLIPBackbone:
        import open_clip

        model_name, weights, to_hash = parse_name(name)
        kwargs: dict = {}
        if weights is not None and not Path(weights).expanduser().is_file():  # a pretrained tag: its cached file
            weights, cfg = cached_weights(name, model_name, weights)
            kwargs = {"force_quick_gelu": bool(cfg.get("quick_gelu", False)),
                      "force_preprocess_cfg": {k: cfg[k] for k in PREPROCESS_KEYS if k in cfg}}  # fmt: skip
            to_hash = weights
        try:
            model = open_clip.create_model(model_name, pretrained=weights, device="cpu", precision="fp32",
                                           load_weights=True, pretrained_text=False, **kwargs)  # fmt: skip
            tokenizer = open_clip.get_tokenizer(model_name, context_length=model.context_length)
        except Exception as err:  # noqa: BLE001 - open_clip raises RuntimeError, ValueError, OSError, ...
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BackboneError(f"backbone {name!r}: OpenCLIP could not build it offline ({reason[:300]})") from None
        spec = BackboneSpec(name, str(Path(to_hash).expanduser().resolve()), weights_sha256(Path(to_hash).expanduser()))
        return cls(model, tokenizer, spec, cache_dir)

    @property
    def _text_tower(self) -> nn.Module:
        return getattr(self.model, "text", self.model)  # CustomTextCLIP keeps it apart, CLIP inline

    @property
    def context_length(self) -> int:
        return int(self.model.context_length)

    @property
    def token_embedding(self) -> nn.Embedding | None:
        tower = self._text_tower
        if isinstance(getattr(tower, "token_embedding", None), nn.Embedding):
            return tower.token_embedding
        hf = getattr(tower, "transformer", None)  # HFTextEncoder: a transformers model inside
        return hf.get_input_embeddings() if hasattr(hf, "get_input_embeddings") else None

    def token_count(self, text: str) -> int:
        hf = getattr(self.tokenizer, "tokenizer", None)
        if hf is not None:
            clean = getattr(self.tokenizer, "clean_fn", lambda t: t)
            return len(hf(clean(text))["input_ids"])
        return len(self.tokenizer.encode(text)) + 2  # SimpleTokenizer: SOS + BPE + EOT

    def _token_ids(self, texts: list[str]) -> Tensor:
        return self.tokenizer(texts)

    def _image_forward(self, images: Tensor) -> Tensor:
        return self.model.encode_image(images)

    def _text_forward(self, tokens: Tensor) -> Tensor:
        return self.model.encode_text(tokens)
