"""Aggregators: condense a variable set of prompt embeddings P into one embedding p^a.

Every variant takes ``image (B, d)``, ``prompts (B, M, d)`` and ``mask (B, M)`` (True where a
prompt is real, False for padding) and returns ``(B, d)`` fp32 unit vectors. None of them uses a
prompt's position, so each is invariant to permuting the prompts and to adding padding.
Parameters stay fp32; half-precision inputs (autocast) are cast to the parameters' dtype.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import ClosedUnitInterval, PositiveInt
from torch import Tensor, nn


class Aggregator(nn.Module):
    """Base class: pick an implementation in YAML with ``class_path``."""

    def __init__(self, dim: PositiveInt) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError


def _masked_mean(prompts: Tensor, mask: Tensor) -> Tensor:
    w = mask.to(prompts.dtype)  # pragma: no mutate: callers pass fp32 prompts, where a bool mask gives the same values and dtype
    w = w.unsqueeze(-1)  # (B, M, 1)
    return (prompts * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, d)


class AttentionAggregator(Aggregator):
    """The paper's aggregator: one pre-LayerNorm transformer layer over ``[q ; P]``, read at q.

    ``p^a = normalise(y)`` with ``h = q + MHA(LN1(q), LN1([q ; P]))`` and ``y = h + FFN(LN2(h))``.
    Only q's output is used, so q is the single query and ``[q ; P]`` the keys and values: the
    same as a full ``norm_first`` encoder layer's output at position 0, in O(M d) per head
    instead of O(M^2 d). Keys carry no position, so the result is invariant to prompt order;
    q is always a real key, so a row with every prompt padded still has a finite output.

    The query token. The paper's q is "a learnable prompt embedding initialised as the mean of
    P", but P differs per image (a class's prompts, an image's captions), so here
    ``q = mean(P) + offset + W_x x`` with ``offset`` (d,) and ``W_x`` (d -> d) zero-initialised:
    at step 0, q is exactly the mean prompt. The paper calls its aggregator input-adapted and
    shows per-image attention, which needs the image to steer it; ``W_x`` lets it do so as
    training goes on. ``condition_on_image=False`` drops ``W_x`` (the literal paper form).

    Args:
        dim: embedding width d (linked from the backbone).
        num_heads: attention heads; must divide ``dim``.
        ffn_hidden: hidden width of the feed-forward network; default 4 * d (the standard
            transformer ratio; the aggregator is used in training only, so its size costs no
            inference time).
        dropout: dropout on the attention weights and in the feed-forward network.
        activation: the feed-forward nonlinearity.
        condition_on_image: add ``W_x x`` to the query (zero-initialised); False gives the
            paper's literal form, where q does not see the image.
    """

    def __init__(
        self,
        dim: PositiveInt,
        num_heads: PositiveInt = 8,
        ffn_hidden: PositiveInt | None = None,
        dropout: ClosedUnitInterval = 0.0,
        activation: Literal["gelu", "relu"] = "gelu",
        condition_on_image: bool = True,
    ) -> None:
        super().__init__(dim)
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"AttentionAggregator: num_heads={num_heads} does not divide dim={dim}; pick a divisor")
        ffn_hidden = ffn_hidden or 4 * dim
        self.offset = nn.Parameter(torch.zeros(dim))
        self.image_to_query = None
        if condition_on_image:
            self.image_to_query = nn.Linear(dim, dim, bias=False)  # W_x  # pragma: no mutate: nn.Linear reads bias=None as False
            nn.init.zeros_(self.image_to_query.weight)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        act = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_hidden), act(), nn.Dropout(dropout), nn.Linear(ffn_hidden, dim), nn.Dropout(dropout)
        )

    def query(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        """q = mean(P) + offset [+ W_x x], (B, d); equals mean(P) at initialisation."""
        dtype = self.offset.dtype
        q = _masked_mean(prompts.to(dtype), mask) + self.offset  # (B, d)
        if self.image_to_query is not None:
            q = q + self.image_to_query(image.to(dtype))  # (B, d)
        return q

    def _attend(self, image: Tensor, prompts: Tensor, mask: Tensor, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        q = self.query(image, prompts, mask).unsqueeze(1)  # (B, 1, d)
        prompts = prompts.to(q.dtype)  # pragma: no mutate: torch.cat below promotes half prompts to q's fp32 anyway
        seq = self.norm1(torch.cat([q, prompts], dim=1))  # (B, 1 + M, d): LN1([q ; P])
        keep = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)  # (B, 1 + M), q always kept
        out, weights = self.attn(seq[:, :1], seq, seq, key_padding_mask=~keep, need_weights=need_weights)
        h = q + out  # (B, 1, d)
        y = h + self.ffn(self.norm2(h))  # (B, 1, d)
        return y.squeeze(1), weights  # (B, d), (B, 1, 1 + M) averaged over heads, or None

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        y, _ = self._attend(image, prompts, mask, need_weights=False)
        return F.normalize(y.float())  # (B, d) rows to unit length (normalize's dim=1)

    def attention(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        """Attention of q on each prompt, averaged over heads, (B, M); for explaining p^a.

        These are the weights on P only, not renormalised: ``1 - row sum`` is the weight q puts
        on itself. Padding gets exactly 0. Dropout applies in training mode, as in forward.
        """
        _, weights = self._attend(image, prompts, mask, need_weights=True)
        return weights[:, 0, 1:].float()  # (B, M)


class MeanAggregator(Aggregator):
    """Ablation: the plain average of the prompt embeddings (nothing learned)."""

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        return F.normalize(_masked_mean(prompts.float(), mask))  # (B, d) rows to unit length (normalize's dim=1)


class RandomAggregator(Aggregator):
    """Ablation: one real prompt drawn at random per image while training; the mean in eval.

    Eval uses the mean so that validation is deterministic (the target is only used in
    training anyway).
    """

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        if not self.training:
            return F.normalize(_masked_mean(prompts.float(), mask))  # (B, d) rows to unit length (normalize's dim=1)
        scores = torch.rand(mask.shape, device=mask.device)  # (B, M) in [0, 1)
        scores = scores.masked_fill(~mask, -torch.inf)  # padding is never drawn
        pick = scores.argmax(dim=1)  # (B,)
        chosen = prompts.take_along_dim(pick[:, None, None], dim=1).squeeze(1)  # (B, 1, d) -> (B, d)
        return F.normalize(chosen.float())  # (B, d) rows to unit length (normalize's dim=1)


class MLPAggregator(Aggregator):
    """The paper's MLP ablation: ``p^a = normalise(alpha * f(p_bar) + (1 - alpha) * p_bar)``.

    ``p_bar`` is the mean prompt, ``f`` a two-layer bottleneck MLP with ReLU and ``alpha`` a
    learned scalar (unconstrained, as in the paper). The image is not used.

    Args:
        dim: embedding width d.
        hidden: hidden width of f (default d // 4).
        alpha_init: initial value of alpha (0 starts at the mean prompt, 1 at f alone).
    """

    def __init__(self, dim: PositiveInt, hidden: PositiveInt | None = None, alpha_init: ClosedUnitInterval = 0.5) -> None:
        super().__init__(dim)
        hidden = hidden or max(dim // 4, 1)
        self.f = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def forward(self, image: Tensor, prompts: Tensor, mask: Tensor) -> Tensor:
        p_bar = _masked_mean(prompts.to(self.alpha.dtype), mask)  # (B, d)
        mixed = self.alpha * self.f(p_bar) + (1 - self.alpha) * p_bar  # (B, d)
        return F.normalize(mixed.float())  # (B, d) rows to unit length (normalize's dim=1)
