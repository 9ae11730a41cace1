"""Frozen CLIP: encoders that never train, never reach the optimizer, never enter a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch import Tensor, nn

from aape_lightning.backbones.clip_loader import (
    CLIP_MEAN,
    CLIP_STD,
    BackboneSpec,
    clip,
    default_cache_dir,
    resolve_backbone,
)
from aape_lightning.backbones.text_cache import TextFeatureCache
from aape_lightning.errors import TextTooLongError


class FrozenCLIP(nn.Module):
    """Wraps a clip-anytorch model; every output is L2-normalised and fp32.

    Weights stay fp32 on every device (Adam never sees them, autocast gives the speed);
    the module stays in eval mode whatever ``train()`` asks, and its weights are left out
    of ``state_dict`` so a checkpoint holds only what was trained plus ``spec``.
    """

    def __init__(self, model: nn.Module, spec: BackboneSpec, cache_dir: str | Path | None = None) -> None:
        super().__init__()
        self.model = model.float().eval()
        self.model.requires_grad_(False)
        self.spec = spec
        self.text_cache = TextFeatureCache(self.encode_text, key=spec.sha256[:24], cache_dir=cache_dir)
        self._register_state_dict_hook(_drop_backbone_weights)
        self._register_load_state_dict_pre_hook(_remember_prefix, with_module=True)
        self.register_load_state_dict_post_hook(_ignore_missing_backbone_weights)

    @classmethod
    def load(cls, name_or_path: str, cache_dir: str | Path | None = None) -> FrozenCLIP:
        """Resolve ``name_or_path`` (see ``resolve_backbone``); text embeddings cache under ``cache_dir``."""
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        model, spec = resolve_backbone(name_or_path, cache_dir)
        return cls(model, spec, cache_dir)

    def train(self, mode: bool = True) -> FrozenCLIP:
        return super().train(False)

    # -- sizes, read from the weights, never assumed ---------------------------------
    @property
    def embed_dim(self) -> int:
        return self.model.text_projection.shape[1]

    @property
    def token_width(self) -> int:
        return self.model.token_embedding.weight.shape[1]

    @property
    def context_length(self) -> int:
        return self.model.context_length

    @property
    def image_resolution(self) -> int:
        return self.model.visual.input_resolution

    @property
    def image_mean(self) -> tuple[float, ...]:
        return CLIP_MEAN

    @property
    def image_std(self) -> tuple[float, ...]:
        return CLIP_STD

    @property
    def logit_scale(self) -> Tensor:
        """tau = exp(logit_scale), frozen, as a 0-d fp32 tensor."""
        return self.model.logit_scale.detach().float().exp()

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    # -- encoders --------------------------------------------------------------------
    def token_count(self, text: str) -> int:
        """Tokens ``text`` takes in the text context, SOS and EOT included."""
        return len(clip.clip._tokenizer.encode(text)) + 2

    def tokenize(self, texts: list[str]) -> Tensor:
        """Token ids ``(N, context_length)``; a text too long is an error that names it."""
        too_long = [t for t in texts if self.token_count(t) > self.context_length]
        if too_long:
            raise TextTooLongError(
                f"{len(too_long)} text(s) exceed the backbone's context length of {self.context_length} tokens, "
                f"e.g. {too_long[0][:120]!r} ({self.token_count(too_long[0])} tokens). Shorten the class name or prompt."
            )
        return clip.tokenize(texts, context_length=self.context_length).to(self.device)

    @torch.no_grad()
    def encode_image(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` preprocessed images -> ``(B, d)`` unit vectors (the feature store keeps them: see
        data/feature_store.py)."""
        return F.normalize(self.model.encode_image(images.to(self.device)).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """Plain texts -> ``(N, d)`` unit vectors, batched."""
        with torch.autocast(self.device.type, enabled=False):  # cached features must not depend on precision
            out = [
                F.normalize(self.model.encode_text(self.tokenize(texts[i : i + batch_size])).float(), dim=-1)
                for i in range(0, len(texts), batch_size)
            ]
        return torch.cat(out) if out else torch.empty(0, self.embed_dim, device=self.device)

    def text_features(self, texts: list[str]) -> Tensor:
        """Like ``encode_text`` but each unique text is encoded once per backbone, ever (see TextFeatureCache)."""
        return self.text_cache(texts, device=self.device, writer=rank_zero_only.rank == 0)

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Token ids ``(N, L)`` -> frozen input embeddings ``(N, L, width)``."""
        with torch.no_grad():
            return self.model.token_embedding(tokens).float()

    def encode_embeddings(self, embeddings: Tensor, tokens: Tensor) -> Tensor:
        """Run the text transformer on input embeddings in which soft tokens were placed.

        ``embeddings (N, L, width)`` may carry gradients (learned context, AAPE tokens);
        ``tokens (N, L)`` are the ids the sequence was tokenized from, used to find EOT.
        Returns ``(N, d)`` unit vectors, pooled at EOT as CLIP does.
        """
        m = self.model
        x = embeddings.to(m.positional_embedding.dtype) + m.positional_embedding  # (N, L, width)
        x = m.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # the transformer is sequence-first
        x = m.ln_final(x)
        eot = tokens.argmax(dim=-1)  # the EOT id is the largest in CLIP's vocabulary
        x = x[torch.arange(x.shape[0], device=x.device), eot] @ m.text_projection  # (N, d)
        return F.normalize(x.float(), dim=-1)

    def encode_with_context(self, tokens: Tensor, context: Tensor, index: Tensor | None = None) -> Tensor:
        """Encode ``K`` token sequences in which placeholder tokens are replaced by learned ``context``.

        ``tokens (K, L)`` were tokenized from ``"X X .. X <text>"`` (``n`` placeholders after SOS).
        ``context (..., n, width)`` broadcasts against ``(K, n, width)``: ``(n, w)`` is shared by every
        sequence (CoOp), ``(K, n, w)`` is one per class, ``(B, 1, n, w)`` one per image (CoCoOp, AAPE).
        ``index (K, L)`` says, for each output position, which row of ``[token embeddings; context]``
        goes there (see ``context_layout``); by default the context sits where the placeholders are.
        Returns ``(..., K, d)`` unit vectors; gradients flow to ``context`` only.
        """
        n = context.shape[-2]
        embeds = self.embed_tokens(tokens)  # (K, L, w)
        if index is None:
            index = context_layout(tokens.shape[-1], n, [0] * tokens.shape[0], "end").to(tokens.device)
        lead = torch.broadcast_shapes(context.shape[:-2], embeds.shape[:1])  # (..., K)
        table = torch.cat(
            [embeds.expand(*lead, -1, -1), context.to(embeds.dtype).expand(*lead, -1, -1)], dim=-2
        )  # (..., K, L + n, w): token embeddings, then the context vectors
        gather = index[..., None].expand(*lead, -1, table.shape[-1])  # (..., K, L, w)
        full = table.gather(-2, gather)  # (..., K, L, w)
        flat_tokens = tokens.expand(*lead, -1).reshape(-1, tokens.shape[-1])  # (N, L)
        out = self.encode_embeddings(full.reshape(-1, *full.shape[-2:]), flat_tokens)  # (N, d)
        return out.reshape(*lead, out.shape[-1])


def context_layout(length: int, n_ctx: int, name_lengths: list[int], position: str = "end") -> Tensor:
    """Gather map ``(K, L)`` for ``encode_with_context``: where SOS, context, class name and rest go.

    The sequence was tokenized as ``[SOS] X*n <name tokens> <rest>``; row ``L + i`` of the gather table
    is context vector ``i``. ``position`` places the class name after the context ("end"), before it
    ("front"), or between its two halves ("middle"), as in CoOp.
    """
    rows = []
    for name_len in name_lengths:
        ctx = [length + i for i in range(n_ctx)]
        name = list(range(1 + n_ctx, 1 + n_ctx + name_len))
        if position == "end":
            middle = ctx + name
        elif position == "front":
            middle = name + ctx
        elif position == "middle":
            half = n_ctx // 2
            middle = ctx[:half] + name + ctx[half:]
        else:
            raise ValueError(f"class token position {position!r} is not one of 'end', 'middle', 'front'")
        rows.append([0, *middle, *range(1 + n_ctx + name_len, length)])
    return torch.tensor(rows, dtype=torch.long)


def _drop_backbone_weights(module: FrozenCLIP, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "model.")]:
        del state_dict[key]


def _remember_prefix(module: FrozenCLIP, state_dict, prefix, *args) -> None:
    module._load_prefix = prefix


def _ignore_missing_backbone_weights(module: FrozenCLIP, incompatible) -> None:
    prefix = getattr(module, "_load_prefix", "") + "model."
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(prefix)]
