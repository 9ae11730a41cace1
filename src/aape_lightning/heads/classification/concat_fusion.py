"""The paper's classifier fusion: per-image class weights w_k(x) = g([w_k ; h(x)]), g nonlinear."""

from __future__ import annotations

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn


class ConcatFusion(nn.Module):
    """Class weights ``w_k(x) = [w_k +] g([w_k ; h(x)])`` and their cosine with the image.

    Two-layer form (``hidden = r``): ``g(z) = W2 relu(W1 z + b1) + b2`` with ``W1 = [A | B]``, so
    ``A w_k`` is per class and ``B h(x)`` per image. The ReLU is what makes the AAPE change the
    ranking of classes: a linear g would add the same vector to every class. With ``residual``,
    ``W2`` and ``b2`` start at zero, so step 0 is zero-shot CLIP exactly; at that step only
    ``W2`` and ``b2`` get a gradient from the task loss (the rest follow from the next step on).

    Literal one-layer form (``hidden=None``): ``g(z) = relu(W z + b)``, ``2d -> d``. Its ReLU is
    full width, so it must form the (B, K, d) weights. It keeps PyTorch's default initialisation
    even with ``residual``: a zero-initialised layer followed by a ReLU would never get a
    gradient, so step 0 is not zero-shot in this form.

    Args:
        dim: embedding width d (linked from the backbone).
        hidden: width r of g's hidden layer (the paper's 32: 2d*r + r + r*d + d = 49.7k
            parameters at d = 512); None for the one-layer form ``relu(W z + b)``.
        residual: add ``w_k`` to g's output (``w_k(x) = w_k + g(...)``) and, in the two-layer
            form, zero-initialise g's last layer so training starts at zero-shot CLIP.
    """

    def __init__(self, dim: PositiveInt, hidden: PositiveInt | None = 32, residual: bool = True) -> None:
        super().__init__()
        if hidden is not None and hidden < 1:
            raise ValueError(f"ConcatFusion: hidden={hidden} must be at least 1, or None for the one-layer form")
        self.dim, self.hidden, self.residual = dim, hidden, residual
        if hidden is None:
            self.literal = nn.Linear(2 * dim, dim)  # W, b
            return
        self.class_in = nn.Linear(dim, hidden)  # A, b1
        self.aape_in = nn.Linear(dim, hidden, bias=False)  # B  # pragma: no mutate: nn.Linear reads bias=None as False
        self.out = nn.Linear(hidden, dim)  # W2, b2
        if residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, image: Tensor, class_features: Tensor, aape: Tensor) -> Tensor:
        return self.cosine(image, class_features, aape)

    def cosine(self, image: Tensor, class_features: Tensor, aape: Tensor) -> Tensor:
        """``cos(x_b, w_k(x_b))``, (B, K), in fp32 whatever the input dtype or autocast state.

        ``image (B, d)`` is x, ``class_features (K, d)`` the w_k, ``aape (B, d)`` is h(x).
        The caller multiplies by CLIP's logit scale.
        """
        with torch.autocast(device_type=image.device.type, enabled=False):
            x, w, h = image.float(), class_features.float(), aape.float()
            if self.hidden is None:
                dot, sq = self._literal_terms(x, w, h)
            else:
                dot, sq = self._fast_terms(x, w, h)
            x_norm = x.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (B, 1)
            return dot / (x_norm * sq.clamp_min(1e-12).sqrt())  # (B, K)

    def _fast_terms(self, x: Tensor, w: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``x . w_bk`` and ``|w_bk|^2`` from the (B, K, r) hidden activations, never (B, K, d).

        With ``H_bk = relu(A w_k + B h_b + b1)``, ``u_b = W2^T x_b``, ``G = W2^T W2``, ``v = W2^T b2``:
          x . w_bk  = [x.w_k] + u_b . H_bk + x_b . b2
          |w_bk|^2  = [|w_k|^2 + 2 w_k.b2 + 2 (W2^T w_k) . H_bk] + H_bk^T G H_bk + 2 v . H_bk + |b2|^2
        (bracketed terms only with ``residual``). Cost O((B + K) d r + d r^2 + B K r^2) on top of
        zero-shot CLIP's O(B K d); memory O(B K r).
        """
        w2, b2 = self.out.weight.float(), self.out.bias.float()  # (d, r), (d,)
        a = w @ self.class_in.weight.float().t() + self.class_in.bias.float()  # (K, r): A w_k + b1
        c = h @ self.aape_in.weight.float().t()  # (B, r): B h_b
        hid = torch.relu(a[None] + c[:, None])  # (B, K, r): H
        u = x @ w2  # (B, r): W2^T x
        gram = w2.t() @ w2  # (r, r): G
        v = b2 @ w2  # (r,): W2^T b2
        dot = torch.einsum("br,bkr->bk", u, hid)  # (B, K)  # pragma: no mutate: einsum's letters may be upper case
        dot = dot + (x @ b2)[:, None]  # (B, K)
        sq = ((hid @ gram) * hid).sum(-1) + 2 * hid @ v + b2.pow(2).sum()  # (B, K): |g_bk|^2
        if self.residual:
            dot = dot + x @ w.t()  # (B, K): + x . w_k
            wt = w @ w2  # (K, r): W2^T w_k
            cross = (hid * wt[None]).sum(-1)  # (B, K): (W2^T w_k) . H_bk
            sq = sq + (w.pow(2).sum(1) + 2 * w @ b2)[None] + 2 * cross  # (B, K)
        return dot, sq

    def _literal_terms(self, x: Tensor, w: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``x . w_bk`` and ``|w_bk|^2`` of ``w_bk = [w_k +] relu(W [w_k ; h_b] + b)``, O(B K d) memory.

        The full-width ReLU leaves no shortcut: the (B, K, d) weights are formed, as in CoCoOp.
        ``W [w ; h] = W_w w + W_h h`` still saves the (B, K, 2d) concatenation.
        """
        d = self.dim
        weight, bias = self.literal.weight.float(), self.literal.bias.float()  # (d, 2d), (d,)
        cw = w @ weight[:, :d].t() + bias  # (K, d): W_w w_k + b
        ch = h @ weight[:, d:].t()  # (B, d): W_h h_b
        weights = torch.relu(cw[None] + ch[:, None])  # (B, K, d)
        if self.residual:
            weights = weights + w[None]  # (B, K, d)
        dot = torch.einsum("bd,bkd->bk", x, weights)  # (B, K)  # pragma: no mutate: einsum's letters may be upper case
        return dot, weights.pow(2).sum(-1)
