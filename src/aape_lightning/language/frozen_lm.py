"""The one place that turns an LM name or path into a frozen causal LM and its tokenizer.

A name is a ``transformers`` hub id or a local folder (``AutoModelForCausalLM`` +
``AutoTokenizer``), "demo" (the small LM shipped in ``assets/demo_lm.pt``), or a file in this
project's own format (``save_lm``: a GPT-2 config, fp32 weights and the tokenizer's JSON in one
file). LiMBeR's own LM is GPT-J 6B (``EleutherAI/gpt-j-6b``); any causal LM loads the same way.
Like the frozen CLIP, the LM never trains, stays in eval mode and is left out of checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aape_lightning.backbones.clip_loader import default_cache_dir, file_sha256, write_payload
from aape_lightning.backbones.frozen_clip import (
    _drop_backbone_weights,
    _ignore_missing_backbone_weights,
    _remember_prefix,
)
from aape_lightning.errors import BackboneError

log = logging.getLogger(__name__)

FORMAT = "aape-lm"
LM_REGISTRY: dict[str, str] = {"demo": "assets/demo_lm.pt"}  # names of files shipped with the package


@dataclass(frozen=True)
class LMSpec:
    """What identifies an LM in checkpoints: the name given and, for files, their SHA256."""

    name: str
    sha256: str  # "" for a hub name or folder (the hub revision pins it)


def save_lm(model: nn.Module, tokenizer: Any, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write a GPT-2 ``model`` and its fast ``tokenizer`` as one byte-reproducible file."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in ("transformers_version", "loss_type")}
    state = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": 1, "config": config, "state_dict": state,
               "tokenizer": tokenizer.backend_tokenizer.to_str(), "extra": extra or {}}  # fmt: skip
    return write_payload(payload, path)


def _load_file(path: Path) -> tuple[nn.Module, Any]:
    from tokenizers import Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BackboneError(f"LM file {path} cannot be read ({err}); pass a file written by `aape demo build-lm`") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BackboneError(f"LM file {path} is not in the {FORMAT!r} format; pass a hub name, a folder or a build-lm file")
    model = GPT2LMHeadModel(GPT2Config(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(payload["tokenizer"]), eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]"
    )
    return model, tokenizer


def resolve_lm(name_or_path: str, cache_dir: str | Path | None = None) -> tuple[nn.Module, Any, LMSpec]:
    """Load ``name_or_path`` on the CPU in fp32: (model, tokenizer, spec)."""
    if name_or_path in LM_REGISTRY:
        path = Path(str(resources.files("aape_lightning").joinpath(LM_REGISTRY[name_or_path])))
        if not path.is_file():
            raise BackboneError(f"LM {name_or_path!r}: packaged file {path} is missing; rebuild it with "
                                f"`aape demo build-lm --out {path}` or pass a hub name or path")  # fmt: skip
        return (*_load_file(path), LMSpec(name_or_path, file_sha256(path)))
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return (*_load_file(path), LMSpec(name_or_path, file_sha256(path)))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = str(Path(cache_dir or default_cache_dir()) / "lm")
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, cache_dir=root, torch_dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, cache_dir=root)
    except Exception as err:
        raise BackboneError(
            f"LM {name_or_path!r}: not a packaged name ({', '.join(LM_REGISTRY)}), a build-lm file, or a "
            f"transformers model that can be loaded into {root} ({type(err).__name__}). Offline? Pass a local folder."
        ) from err
    if tokenizer.eos_token_id is None:
        raise BackboneError(f"LM {name_or_path!r}: its tokenizer has no end-of-sequence token; pick another LM")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, LMSpec(name_or_path, "")


class FrozenLM(nn.Module):
    """A causal LM that reads ``inputs_embeds``; weights frozen, fp32, never in ``state_dict``."""

    def __init__(self, model: nn.Module, tokenizer: Any, spec: LMSpec) -> None:
        super().__init__()
        self.model = model.float().eval()
        self.model.requires_grad_(False)
        self.tokenizer, self.spec = tokenizer, spec
        self._register_state_dict_hook(_drop_backbone_weights)
        self._register_load_state_dict_pre_hook(_remember_prefix, with_module=True)
        self.register_load_state_dict_post_hook(_ignore_missing_backbone_weights)

    @classmethod
    def load(cls, name_or_path: str, cache_dir: str | Path | None = None) -> FrozenLM:
        return cls(*resolve_lm(name_or_path, cache_dir))

    def train(self, mode: bool = True) -> FrozenLM:
        return super().train(False)

    @property
    def width(self) -> int:
        """The LM's input embedding width E (read from the weights)."""
        return self.model.get_input_embeddings().weight.shape[1]

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, without special tokens."""
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def embed(self, ids: Tensor) -> Tensor:
        """Token ids ``(...)`` -> frozen input embeddings ``(..., E)``."""
        return self.model.get_input_embeddings()(ids.to(self.model.device))
