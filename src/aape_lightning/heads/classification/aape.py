"""The AAPE head: class weights conditioned on the image through its AAPE h(x).

Training adds the core's losses (aggregator reward, distillation) using the prompts of each
image's class; inference needs only the generator and the fusion below, no prompt bank.
"""

from __future__ import annotations

from typing import Literal

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.core.aape import AAPECore
from aape_lightning.heads.classification.base import ClassificationHead, CoreFactory, HeadOutput, zero_shot_logits
from aape_lightning.heads.classification.concat_fusion import ConcatFusion

FUSIONS = ("concat", "proxy", "feature", "modulate", "token")


class AAPEHead(ClassificationHead):
    """Class weights from the class template's feature w_k and the image's AAPE h(x).

    Args:
        backbone: the frozen CLIP (given by the task).
        fusion: "concat" (the paper's): ``w_k(x) = g([w_k ; h(x)])`` with a ReLU in ``g``, logits
            ``tau * cos(x, w_k(x))``, computed without forming (B, K, d) (see ``ConcatFusion``);
            "proxy" (the paper's h(x)-only ablation): ``tau * cos(h(x), w_k)``. Ablations kept for
            comparison: "feature" ``normalise(P1 w_k + P2 h(x))`` and "modulate"
            ``normalise(P1 w_k + (P2 h(x)) * w_k)``, both linear in h(x) (the paper warns a linear
            fusion lets the classifier ignore h(x)); "token": h(x) as soft tokens before the
            template, the text encoder run per (image, class) as in CoCoOp (costly).
        hidden: ``g``'s hidden width for "concat" (32 matches the paper's 82k parameters at d = 512);
            None: the literal one-layer ``relu(W [w_k ; h(x)] + b)``.
        residual: "concat" as ``w_k + g([w_k ; h(x)])`` with g's last layer zero-initialised, so
            step 0 is zero-shot CLIP exactly (our addition); False: the paper's ``g([w_k ; h(x)])``.
        n_tokens: soft tokens per image for ``fusion="token"``.
        core: the task-agnostic AAPE core (aggregator, generator, lambda, losses), called with
            the backbone's embedding width; given by the task (``model.init_args.core``, the same key
            in every task), never set under the head.
    """

    prompt_sets = "train"
    diagnostics = ("shuffled",)

    def __init__(
        self,
        backbone: FrozenCLIP,
        fusion: Literal["concat", "proxy", "feature", "modulate", "token"] = "concat",
        hidden: PositiveInt | None = 32,
        residual: bool = True,
        n_tokens: PositiveInt = 1,
        *,
        core: CoreFactory = AAPECore,
    ) -> None:
        super().__init__(backbone)
        dim = backbone.embed_dim
        if fusion not in FUSIONS:
            raise ValueError(f"AAPEHead: fusion {fusion!r} is not one of {', '.join(map(repr, FUSIONS))}")
        self.fusion = fusion
        self.core = core(dim)
        if fusion == "concat":
            self.concat = ConcatFusion(dim, hidden, residual)
        elif fusion in ("feature", "modulate"):
            self.class_proj = nn.Linear(dim, dim, bias=False)  # P1  # pragma: no mutate: nn.Linear reads bias=None as False
            self.aape_proj = nn.Linear(dim, dim, bias=False)  # P2  # pragma: no mutate: nn.Linear reads bias=None as False
            nn.init.eye_(self.class_proj.weight)
            nn.init.zeros_(self.aape_proj.weight)
        elif fusion == "token":
            backbone.require_token_level(f"{type(self).__name__}(fusion='token')")
            self.n_tokens = n_tokens
            self.to_tokens = nn.Linear(dim, n_tokens * backbone.token_width)
        # (K, M, d) and (K, M) of class set prompt_set, training only: buffers follow the head's device, not
        # saved; set_prompts fills them before any read
        self.register_buffer("prompt_bank", None, persistent=False)
        self.register_buffer("prompt_mask", None, persistent=False)
        self.prompt_set: str | None = None  # pragma: no mutate: no class set is named "" ("all", "base", a dataset)
        self._token_cache: dict[str, Tensor] = {}

    def set_prompts(self, class_set: str, embeddings: Tensor, mask: Tensor) -> None:
        self.prompt_set, self.prompt_bank, self.prompt_mask = class_set, embeddings, mask

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        prompts = mask = None
        if labels is not None and self.training and class_set == self.prompt_set:
            prompts, mask = self.prompt_bank[labels], self.prompt_mask[labels]  # (B, M, d), (B, M)
        out = self.core(image, self.backbone.logit_scale, prompts, mask)
        return HeadOutput(self.logits(image, out.aape, class_set), out.losses)

    def logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """``(B, K)`` logits of ``image (B, d)`` given its AAPE ``aape (B, d)`` (or another image's)."""
        fuse = {"concat": self._concat_logits, "proxy": self._proxy_logits, "feature": self._feature_logits,
                "modulate": self._modulate_logits, "token": self._token_logits}
        return fuse[self.fusion](image, aape, class_set)

    def diagnostic_logits(self, image: Tensor, class_set: str) -> dict[str, Tensor]:
        """The shuffle test: logits with h(x) of another image, to show whether the head reads h(x).

        Each image gets the AAPE of the image half a batch away; evaluation batches are grouped by
        class, so that is almost always an image of another class. A head that ignores h(x) scores
        the same; one that uses it loses accuracy. Batches of one image are left out.
        """
        if image.shape[0] < 2:
            return {}
        aape = self.core.generator(image)  # (B, d)
        other = aape.roll(image.shape[0] // 2, dims=0)  # (B, d): another image's h
        return {"shuffled": self.logits(image, other, class_set)}

    def _concat_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(x, [w_k +] g([w_k ; h(x)])) in O(B K r^2) on top of zero-shot CLIP (see ConcatFusion)."""
        return self.backbone.logit_scale * self.concat.cosine(image, self.class_features(class_set), aape)

    def _proxy_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(h(x), w_k): the AAPE as a proxy image query (the paper's h(x)-only ablation)."""
        return zero_shot_logits(aape, self.class_features(class_set), self.backbone.logit_scale)

    def _feature_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(f, P1 c_k + P2 p) in O((B + K) d^2 + B K d), never materialising (B, K, d)."""
        a = self.class_proj(self.class_features(class_set))  # (K, d)
        b = self.aape_proj(aape)  # (B, d)
        f = image.to(a.dtype)
        num = f @ a.t() + (f * b).sum(1, keepdim=True)  # (B, K): f.a_k + f.b
        sq = a.pow(2).sum(1)[None] + 2 * b @ a.t() + b.pow(2).sum(1, keepdim=True)  # (B, K): |a_k + b|^2
        return self.backbone.logit_scale * num.float() / sq.float().clamp_min(1e-12).sqrt()

    def _modulate_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        """tau * cos(f, P1 c_k + (P2 p) * c_k), also O((B + K) d^2 + B K d)."""
        c = self.class_features(class_set)  # (K, d)
        a = self.class_proj(c)  # (K, d)
        b = self.aape_proj(aape)  # (B, d)
        f = image.to(a.dtype)
        num = f @ a.t() + (f * b) @ c.t()  # (B, K): f.a_k + f.(b * c_k)
        sq = a.pow(2).sum(1)[None] + 2 * b @ (c * a).t() + b.pow(2) @ c.pow(2).t()  # (B, K): |a_k + b * c_k|^2
        return self.backbone.logit_scale * num.float() / sq.float().clamp_min(1e-12).sqrt()

    def longest_template(self, template: str) -> str:
        """The token fusion tokenises ``X*n <template>`` per class."""
        text = super().longest_template(template)
        return self._after_placeholders(text) if self.fusion == "token" else text

    def _after_placeholders(self, text: str) -> str:
        """``X*n <text>``: the placeholders the n soft tokens replace, then the class's text."""
        return " ".join([*["X"] * self.n_tokens, text])

    def _class_tokens(self, class_set: str) -> Tensor:
        tokens = self._token_cache.get(class_set)
        if tokens is None or tokens.device != self.backbone.device:
            names, template = self.class_sets[class_set]
            tokens = self.backbone.tokenize([self._after_placeholders(template.format(c)) for c in names])  # (K, L)
            self._token_cache[class_set] = tokens
        return tokens

    def _token_logits(self, image: Tensor, aape: Tensor, class_set: str) -> Tensor:
        ctx = self.to_tokens(aape).view(aape.shape[0], 1, self.n_tokens, -1)  # (B, 1, n, w)
        weights = self.backbone.encode_with_context(self._class_tokens(class_set), ctx)  # (B, K, d)
        cos = torch.einsum("bd,bkd->bk", image.float(), weights.float())  # (B, K)  # pragma: no mutate: einsum's letters may be upper case
        return self.backbone.logit_scale * cos
