"""The AAPE head: class weights conditioned on the image through its AAPE p(x).

Training adds the core's losses (aggregator reward, distillation) using the prompts of each
image's class; inference needs only the generator and the fusion below, no prompt bank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.core.aape import AAPECore
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput


class AAPEHead(ClassificationHead):
    """AAPE combined with the class template, projected into classification weights.

    Args:
        backbone: the frozen CLIP (given by the task).
        fusion: "feature": ``w_k(x) = normalise(P1 c_k + P2 p(x))`` with ``P1 = I, P2 = 0`` at
            start, so step 0 is zero-shot CLIP exactly and the text encoder never runs per image;
            "token": ``p(x)`` projected to soft tokens placed before the template, the text encoder
            runs per (image, class) as in CoCoOp (costly).
        n_tokens: soft tokens per image for ``fusion="token"``.
        core: the task-agnostic AAPE core (aggregator, generator, lambda, losses), called with
            the backbone's embedding width; the same YAML block for every task.
    """

    prompt_sets = "train"

    def __init__(
        self,
        backbone: FrozenCLIP,
        fusion: Literal["feature", "modulate", "token"] = "feature",
        n_tokens: int = 1,
        core: Callable[[int], AAPECore] = AAPECore,
    ) -> None:
        super().__init__(backbone)
        dim = backbone.embed_dim
        self.fusion = fusion
        self.core = core(dim)
        if fusion in ("feature", "modulate"):
            self.class_proj = nn.Linear(dim, dim, bias=False)  # P1
            self.aape_proj = nn.Linear(dim, dim, bias=False)  # P2
            nn.init.eye_(self.class_proj.weight)
            nn.init.zeros_(self.aape_proj.weight)
        elif fusion == "token":
            self.n_tokens = n_tokens
            self.to_tokens = nn.Linear(dim, n_tokens * backbone.token_width)
        else:
            raise ValueError(f"AAPEHead: fusion {fusion!r} is not one of 'feature', 'modulate', 'token'")
        self.register_buffer("prompt_bank", torch.empty(0), persistent=False)  # (K, M, d), training only
        self.register_buffer("prompt_mask", torch.empty(0, dtype=torch.bool), persistent=False)  # (K, M)
        self.prompt_set: str | None = None
        self._token_cache: dict[str, Tensor] = {}

    def set_prompts(self, class_set: str, embeddings: Tensor, mask: Tensor) -> None:
        self.prompt_set, self.prompt_bank, self.prompt_mask = class_set, embeddings, mask

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        prompts = mask = None
        if labels is not None and self.training and class_set == self.prompt_set:
            prompts, mask = self.prompt_bank[labels], self.prompt_mask[labels]  # (B, M, d), (B, M)
        out = self.core(image, self.backbone.logit_scale, prompts, mask)
        fuse = {"feature": self._feature_logits, "modulate": self._modulate_logits, "token": self._token_logits}
        return HeadOutput(fuse[self.fusion](image, out.aape, class_set), out.losses)

    def _feature_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(f, P1 c_k + P2 p) in O((B + K) d^2 + B K d), never materialising (B, K, d)."""
        a = self.class_proj(self.class_features(class_set))  # (K, d)
        b = self.aape_proj(aape)  # (B, d)
        f = image.to(a.dtype)
        num = f @ a.t() + (f * b).sum(-1, keepdim=True)  # (B, K): f.a_k + f.b
        sq = a.pow(2).sum(-1)[None] + 2 * b @ a.t() + b.pow(2).sum(-1, keepdim=True)  # (B, K): |a_k + b|^2
        return self.backbone.logit_scale * num.float() / sq.float().clamp_min(1e-12).sqrt()

    def _modulate_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(f, P1 c_k + (P2 p) * c_k), also O((B + K) d^2 + B K d)."""
        c = self.class_features(class_set)  # (K, d)
        a = self.class_proj(c)  # (K, d)
        b = self.aape_proj(aape)  # (B, d)
        f = image.to(a.dtype)
        num = f @ a.t() + (f * b) @ c.t()  # (B, K): f.a_k + f.(b * c_k)
        sq = a.pow(2).sum(-1)[None] + 2 * b @ (c * a).t() + b.pow(2) @ c.pow(2).t()  # (B, K): |a_k + b * c_k|^2
        return self.backbone.logit_scale * num.float() / sq.float().clamp_min(1e-12).sqrt()

    def _class_tokens(self, class_set: str) -> Tensor:
        tokens = self._token_cache.get(class_set)
        if tokens is None or tokens.device != self.backbone.device:
            names, template = self.class_sets[class_set]
            placeholders = " ".join(["X"] * self.n_tokens)
            tokens = self.backbone.tokenize([f"{placeholders} {template.format(c)}" for c in names])  # (K, L)
            self._token_cache[class_set] = tokens
        return tokens

    def _token_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        ctx = self.to_tokens(aape).view(aape.shape[0], 1, self.n_tokens, -1)  # (B, 1, n, w)
        weights = self.backbone.encode_with_context(self._class_tokens(class_set), ctx)  # (B, K, d)
        return self.backbone.logit_scale * torch.einsum("bd,bkd->bk", image.float(), weights.float())
