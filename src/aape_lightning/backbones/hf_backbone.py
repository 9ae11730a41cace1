"""Hugging Face ``transformers`` image-text models (``CLIPModel``, ``SiglipModel``) as frozen backbones.

Named ``hf:<hub id>`` (read from the local Hugging Face cache, ``HF_HOME``, never downloaded) or
``hf:<folder>`` (a ``save_pretrained`` folder: config, weights, tokenizer, image processor).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from torch import Tensor, nn

from aape_lightning.backbones.base import FrozenBackbone
from aape_lightning.backbones.clip_loader import BackboneSpec, file_sha256
from aape_lightning.errors import BackboneError

log = logging.getLogger(__name__)

SCHEME = "hf:"
# model_type -> (model class, image processor class), names in ``transformers``: data, not branches
MODEL_TYPES: dict[str, tuple[str, str]] = {
    "clip": ("CLIPModel", "CLIPImageProcessor"),
    "siglip": ("SiglipModel", "SiglipImageProcessor"),
}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}  # PIL's resampling codes


def hf_folder(name: str) -> Path:
    """The local folder for ``hf:<id or folder>``: a folder as given, a hub id from the local cache only."""
    ref = name[len(SCHEME):]
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser().resolve()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - LocalEntryNotFoundError, HFValidationError, ...
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise BackboneError(
            f"backbone {name!r}: {ref!r} is neither a local folder nor in the Hugging Face cache (HF_HOME={home}) "
            f"({type(err).__name__}); download it where there is internet with `hf download {ref}` and copy the "
            f"cache here, or pass hf:<folder written by save_pretrained>"
        ) from None


def folder_sha256(folder: Path) -> str:
    """Identity of the weights (and the small files that shape the text: config, tokenizer).

    A weight file in the hub cache is a link to a blob named by its SHA256, which is used as is.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        real = path.resolve()
        if path.suffix in WEIGHT_SUFFIXES:
            blob = real.name if len(real.name) == 64 and all(c in "0123456789abcdef" for c in real.name) else ""
            digest.update(f"{path.name}:{blob or file_sha256(real)}\n".encode())
        elif path.suffix in (".json", ".txt", ".model") and real.stat().st_size < 32 << 20:
            digest.update(f"{path.name}:".encode() + real.read_bytes() + b"\n")
    return digest.hexdigest()


def token_prefix_length(tokenizer) -> int:
    """How many special tokens a Hugging Face tokenizer puts before the text (CLIP: SOS, SigLIP: none)."""
    with_special = tokenizer("x")["input_ids"]
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    return with_special.index(bare[0]) if bare and bare[0] in with_special else 0


class HFBackbone(FrozenBackbone):
    """``CLIPModel`` or ``SiglipModel`` with its tokenizer and image processor (see ``FrozenBackbone``).

    Texts are padded to the full context as the models were trained (SigLIP pools the last
    position, so padding decides its features); SigLIP's logit bias is ``logit_bias``.
    """

    family = "Hugging Face transformers"

    def __init__(self, model: nn.Module, tokenizer, processor, spec: BackboneSpec, cache_dir=None) -> None:
        super().__init__(model, spec, cache_dir)
        self.tokenizer = tokenizer
        self.context_start = token_prefix_length(tokenizer)
        size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
        size = size or processor.size
        self._resolution = int(size.get("height") or size.get("shortest_edge"))
        self.image_mean, self.image_std = tuple(processor.image_mean), tuple(processor.image_std)
        self.image_interpolation = RESAMPLE.get(int(processor.resample), "bicubic")
        self.image_resize_mode = "shortest" if "shortest_edge" in processor.size else "squash"

    @classmethod
    def load(cls, name: str, cache_dir: str | Path | None = None) -> HFBackbone:
        import transformers

        folder = hf_folder(name)
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        if config.model_type not in MODEL_TYPES:
            raise BackboneError(
                f"backbone {name!r}: model type {config.model_type!r} is not one of {sorted(MODEL_TYPES)} "
                f"(Hugging Face image-text models this package reads)"
            )
        model_cls, processor_cls = (getattr(transformers, n) for n in MODEL_TYPES[config.model_type])
        model = model_cls.from_pretrained(folder, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        try:
            processor = processor_cls.from_pretrained(folder, local_files_only=True)
        except OSError:  # no preprocessor_config.json: the family's defaults at the model's image size
            side = config.vision_config.image_size
            log.warning("%s: no image processor config; using %s defaults at %d px", name, processor_cls.__name__, side)
            processor = processor_cls(size={"height": side, "width": side}, crop_size={"height": side, "width": side})
        spec = BackboneSpec(name, str(folder), folder_sha256(folder))
        return cls(model, tokenizer, processor, spec, cache_dir)

    @property
    def _text_config(self):
        return self.model.config.text_config

    @property
    def context_length(self) -> int:
        return self._text_config.max_position_embeddings

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.model.text_model.embeddings.token_embedding

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def _token_ids(self, texts: list[str]) -> Tensor:
        return self.tokenizer(texts, padding="max_length", max_length=self.context_length, truncation=True,
                              return_tensors="pt")["input_ids"]  # fmt: skip

    def _image_forward(self, images: Tensor) -> Tensor:
        return _pooled(self.model.get_image_features(pixel_values=images))

    def _text_forward(self, tokens: Tensor) -> Tensor:
        return _pooled(self.model.get_text_features(input_ids=tokens))


def _pooled(out) -> Tensor:
    """``get_*_features`` return the projected features (transformers 4) or an output holding them (5)."""
    return out if isinstance(out, Tensor) else out.pooler_output
