"""The frozen-backbone interface every head and task goes through, whatever library holds the weights.

A family (clip-anytorch, OpenCLIP, Hugging Face) supplies the model-specific pieces: its tokenizer,
the raw image and text forward passes, the token-embedding layer and its preprocessing. Everything
built on them lives here once: normalised fp32 outputs, the text-feature cache, freezing, keeping the
weights out of checkpoints, and encoding token embeddings with soft tokens placed in them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch import Tensor, nn

from aape_lightning.backbones.clip_loader import CLIP_MEAN, CLIP_STD, BackboneSpec
from aape_lightning.backbones.text_cache import TextFeatureCache
from aape_lightning.errors import BackboneError, TextTooLongError


class FrozenBackbone(nn.Module):
    """A frozen image-text model; every output is L2-normalised and fp32.

    Weights stay fp32 on every device (Adam never sees them, autocast gives the speed);
    the module stays in eval mode whatever ``train()`` asks, and its weights are left out
    of ``state_dict`` so a checkpoint holds only what was trained plus ``spec``.

    A family implements ``_image_forward``, ``_text_forward``, ``_token_ids``, ``token_count``,
    ``token_embedding`` and the sizes; ``context_start`` is where the first text token sits
    (1 after CLIP's SOS, 0 for tokenizers that add none, such as SigLIP's).
    """

    family = "backbone"  # named in errors
    context_start = 1
    image_interpolation = "bicubic"  # torchvision InterpolationMode name the model was trained with
    image_resize_mode = "shortest"  # "shortest": resize the short side + centre crop; "squash": resize to a square
    image_mean: tuple[float, ...] = CLIP_MEAN  # the normalisation the model was trained with; families set their own
    image_std: tuple[float, ...] = CLIP_STD

    def __init__(self, model: nn.Module, spec: BackboneSpec, cache_dir: str | Path | None = None) -> None:
        super().__init__()
        self.model = model.float().eval()
        self.model.requires_grad_(False)
        self.spec = spec
        self.text_cache = TextFeatureCache(self.encode_text, key=spec.sha256[:24], cache_dir=cache_dir)
        self._register_state_dict_hook(_drop_backbone_weights)
        self._register_load_state_dict_pre_hook(_remember_prefix, with_module=True)
        self.register_load_state_dict_post_hook(_ignore_missing_backbone_weights)

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(False)

    # -- what a family provides ----------------------------------------------------------
    def _image_forward(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, d)`` unnormalised image embeddings."""
        raise NotImplementedError

    def _text_forward(self, tokens: Tensor) -> Tensor:
        """``(N, L)`` token ids -> ``(N, d)`` unnormalised text embeddings, pooled as the model pools."""
        raise NotImplementedError

    def _token_ids(self, texts: list[str]) -> Tensor:
        """``(N, context_length)`` ids, padded as the model was trained (texts already checked to fit)."""
        raise NotImplementedError

    def token_count(self, text: str) -> int:
        """Tokens ``text`` takes in the text context, special tokens included."""
        raise NotImplementedError

    @property
    def token_embedding(self) -> nn.Embedding | None:
        """The text tower's input embedding layer; None where the family cannot reach it."""
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        raise NotImplementedError

    @property
    def image_resolution(self) -> int:
        """The input size; a family that reads it from its preprocessing config sets ``_resolution``."""
        return self._resolution

    @property
    def logit_scale(self) -> Tensor:
        """tau = exp(logit_scale), frozen, as a 0-d fp32 tensor."""
        return self.model.logit_scale.detach().float().exp().reshape(())

    # -- sizes and constants, overridden where a family knows better ----------------------
    @property
    def embed_dim(self) -> int:
        if not hasattr(self, "_embed_dim"):  # read from one text forward: projections differ per family
            self._embed_dim = int(self.encode_text(["a"]).shape[-1])
        return self._embed_dim

    @property
    def token_width(self) -> int:
        return self._token_embedding_or_refuse("token_width").weight.shape[1]

    @property
    def logit_bias(self) -> Tensor:
        """Added to ``logit_scale * cos`` by models trained with a sigmoid loss (SigLIP); 0 otherwise."""
        bias = getattr(self.model, "logit_bias", None)
        return torch.zeros((), device=self.device) if bias is None else bias.detach().float().reshape(())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- encoders ------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> Tensor:
        """Token ids ``(N, context_length)``; a text too long is an error that names it."""
        too_long = [t for t in texts if self.token_count(t) > self.context_length]
        if too_long:
            raise TextTooLongError(
                f"{len(too_long)} text(s) exceed the backbone's context length of {self.context_length} tokens, "
                f"e.g. {too_long[0][:120]!r} ({self.token_count(too_long[0])} tokens). Shorten the class name or prompt."
            )
        return self._token_ids(texts).to(self.device)

    @torch.no_grad()
    def encode_image(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` preprocessed images -> ``(B, d)`` unit vectors (the feature store keeps them across
        runs: see data/feature_store.py)."""
        return F.normalize(self._image_forward(images.to(self.device)).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> Tensor:
        """Plain texts -> ``(N, d)`` unit vectors, batched."""
        with torch.autocast(self.device.type, enabled=False):  # cached features must not depend on precision
            out = [
                F.normalize(self._text_forward(self.tokenize(texts[i : i + batch_size])).float(), dim=-1)
                for i in range(0, len(texts), batch_size)
            ]
        return torch.cat(out) if out else torch.empty(0, self.embed_dim, device=self.device)

    def text_features(self, texts: list[str]) -> Tensor:
        """Like ``encode_text`` but each unique text is encoded once per backbone, ever (see TextFeatureCache)."""
        return self.text_cache(texts, device=self.device, writer=rank_zero_only.rank == 0)

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Token ids ``(N, L)`` -> frozen input embeddings ``(N, L, width)``."""
        with torch.no_grad():
            return self._token_embedding_or_refuse("embed_tokens")(tokens).float()

    def encode_embeddings(self, embeddings: Tensor, tokens: Tensor) -> Tensor:
        """Run the text tower on input embeddings in which soft tokens were placed.

        ``embeddings (N, L, width)`` may carry gradients (learned context, AAPE tokens);
        ``tokens (N, L)`` are the ids the sequence was tokenized from. The model's own text
        forward runs on ``tokens`` with its token-embedding layer's output replaced by
        ``embeddings``, so positions, masks and pooling (EOT for CLIP-style towers, the last
        token for SigLIP) are exactly the library's. Returns ``(N, d)`` unit vectors.
        """
        layer = self._token_embedding_or_refuse("encode_embeddings")
        replace = layer.register_forward_hook(lambda module, args, out: embeddings.to(out.dtype))
        try:
            return F.normalize(self._text_forward(tokens).float(), dim=-1)
        finally:
            replace.remove()

    def encode_with_context(self, tokens: Tensor, context: Tensor, index: Tensor | None = None) -> Tensor:
        """Encode ``K`` token sequences in which placeholder tokens are replaced by learned ``context``.

        ``tokens (K, L)`` were tokenized from ``"X X .. X <text>"`` (``n`` placeholders from ``context_start``).
        ``context (..., n, width)`` broadcasts against ``(K, n, width)``: ``(n, w)`` is shared by every
        sequence (CoOp), ``(K, n, w)`` is one per class, ``(B, 1, n, w)`` one per image (CoCoOp, AAPE).
        ``index (K, L)`` says, for each output position, which row of ``[token embeddings; context]``
        goes there (see ``context_layout``); by default the context sits where the placeholders are.
        Returns ``(..., K, d)`` unit vectors; gradients flow to ``context`` only.
        """
        n = context.shape[-2]
        embeds = self.embed_tokens(tokens)  # (K, L, w)
        if index is None:
            index = self.context_layout(tokens.shape[-1], n, [0] * tokens.shape[0], "end").to(tokens.device)
        lead = torch.broadcast_shapes(context.shape[:-2], embeds.shape[:1])  # (..., K)
        table = torch.cat(
            [embeds.expand(*lead, -1, -1), context.to(embeds.dtype).expand(*lead, -1, -1)], dim=-2
        )  # (..., K, L + n, w): token embeddings, then the context vectors
        gather = index[..., None].expand(*lead, -1, table.shape[-1])  # (..., K, L, w)
        full = table.gather(-2, gather)  # (..., K, L, w)
        flat_tokens = tokens.expand(*lead, -1).reshape(-1, tokens.shape[-1])  # (N, L)
        out = self.encode_embeddings(full.reshape(-1, *full.shape[-2:]), flat_tokens)  # (N, d)
        return out.reshape(*lead, out.shape[-1])

    def context_layout(self, length: int, n_ctx: int, name_lengths: list[int], position: str = "end") -> Tensor:
        """``context_layout`` for this backbone's tokenizer (the context starts at ``context_start``)."""
        return context_layout(length, n_ctx, name_lengths, position, start=self.context_start)

    def name_token_count(self, text: str) -> int:
        """Tokens ``text`` takes without the special tokens (a class name inside a prompt)."""
        return self.token_count(text) - self.token_count("")

    def require_token_level(self, head: str) -> None:
        """Refuse, in one line naming both, a head that needs the text tower at token level."""
        if self.token_embedding is None:
            raise BackboneError(
                f"head {head} needs the text tower at token level (soft prompts), which backbone "
                f"{self.spec.name!r} ({self.family}) does not expose; use a feature-level head (zero-shot, CuPL, "
                f"linear probe, AAPE with fusion concat) or another backbone"
            )

    def _token_embedding_or_refuse(self, what: str) -> nn.Embedding:
        self.require_token_level(what)
        return self.token_embedding


def context_layout(length: int, n_ctx: int, name_lengths: list[int], position: str = "end", start: int = 1) -> Tensor:
    """Gather map ``(K, L)`` for ``encode_with_context``: where SOS, context, class name and rest go.

    The sequence was tokenized as ``<start special tokens> X*n <name tokens> <rest>`` (CLIP: one SOS,
    ``start=1``); row ``L + i`` of the gather table is context vector ``i``. ``position`` places the
    class name after the context ("end"), before it ("front"), or between its two halves ("middle"), as in CoOp.
    """
    rows = []
    for name_len in name_lengths:
        ctx = [length + i for i in range(n_ctx)]
        name = list(range(start + n_ctx, start + n_ctx + name_len))
        if position == "end":
            middle = ctx + name
        elif position == "front":
            middle = name + ctx
        elif position == "middle":
            half = n_ctx // 2
            middle = ctx[:half] + name + ctx[half:]
        else:
            raise ValueError(f"class token position {position!r} is not one of 'end', 'middle', 'front'")
        rows.append([*range(start), *middle, *range(start + n_ctx + name_len, length)])
    return torch.tensor(rows, dtype=torch.long)


def _drop_backbone_weights(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "model.")]:
        del state_dict[key]


def _remember_prefix(module: nn.Module, state_dict, prefix, *args) -> None:
    module._load_prefix = prefix


def _ignore_missing_backbone_weights(module: nn.Module, incompatible) -> None:
    prefix = getattr(module, "_load_prefix", "") + "model."
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(prefix)]
