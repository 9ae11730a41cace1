"""CoOp's learned context: n_ctx vectors in the text encoder's input space, shared by CoOp-family heads.

``ContextOptions`` is the one YAML block every CoOp-family head takes (``context: {n_ctx: ..}``),
so the options are declared once; ``LearnedContext`` is the module built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn

from aape_lightning.backbones.clip_loader import clip
from aape_lightning.backbones.frozen_clip import FrozenCLIP, context_layout
from aape_lightning.heads.classification.base import check_class_names


@dataclass(frozen=True)
class ContextOptions:
    """How a CoOp-family head builds its learned context.

    Args:
        n_ctx: number of context vectors (ignored when ``ctx_init`` is given: its number of words,
            as CoOp counts them, each vector the embedding of the next token).
        ctx_init: words to initialise the context from, e.g. "a photo of a"; None: N(0, 0.02).
        class_specific: one context per class (CSC) instead of one shared ("unified") context;
            random contexts are drawn independently per class (CoOp). With ``ctx_init`` every class
            starts from the words: CoOp's code then ignores CSC and learns one shared context; here
            the flag is honoured (no silent override).
        class_token_position: "end", "middle" or "front".
    """

    n_ctx: PositiveInt = 16
    ctx_init: str | None = None
    class_specific: bool = False
    class_token_position: Literal["end", "middle", "front"] = "end"


class LearnedContext(nn.Module):
    """Learned context ``[SOS][ctx_1..ctx_n][class tokens][.][EOS]``, pooled at EOT (CoOp, Zhou et al. 2022)."""

    def __init__(self, backbone: FrozenCLIP, options: ContextOptions = ContextOptions()) -> None:
        super().__init__()
        object.__setattr__(self, "backbone", backbone)
        n_ctx, ctx_init = options.n_ctx, options.ctx_init
        class_specific, class_token_position = options.class_specific, options.class_token_position
        if class_token_position not in ("end", "middle", "front"):
            raise ValueError(f"class_token_position {class_token_position!r} is not one of 'end', 'middle', 'front'")
        width = backbone.token_width
        if ctx_init:
            words = ctx_init.replace("_", " ").strip()
            n_ctx = len(words.split(" "))  # CoOp: one vector per word, the first n token embeddings
            init = backbone.embed_tokens(backbone.tokenize([words]))[0, 1 : 1 + n_ctx].cpu()  # (n, w)
        else:
            init = torch.randn(n_ctx, width) * 0.02  # (n, w), CoOp's init
        if n_ctx + 3 > backbone.context_length:
            raise ValueError(
                f"n_ctx={n_ctx} leaves no room for a class name in the backbone's context length "
                f"of {backbone.context_length} tokens; use n_ctx <= {backbone.context_length - 3}"
            )
        self.n_ctx, self.class_specific, self.position = n_ctx, class_specific, class_token_position
        self._init, self._random_init = init, not ctx_init
        if class_specific:
            self.ctx = nn.ParameterDict()  # class set -> (K, n, w), created when its classes are known
        else:
            self.ctx = nn.Parameter(init.clone())  # (n, w)
        self._layouts: dict[str, tuple[Tensor, Tensor]] = {}

    def add_class_set(self, name: str, classnames: list[str]) -> None:
        """Tokenize ``X*n <class>.`` for a class set; CSC creates that set's contexts."""
        placeholders = " ".join(["X"] * self.n_ctx)
        check_class_names(self.backbone, name, classnames, f"{placeholders} {{}}.", f"or lower n_ctx ({self.n_ctx})")
        tokens = self.backbone.tokenize([f"{placeholders} {c}." for c in classnames]).cpu()  # (K, L)
        names_only = [len(clip.clip._tokenizer.encode(c)) for c in classnames]
        index = context_layout(tokens.shape[1], self.n_ctx, names_only, self.position)  # (K, L)
        self._layouts[name] = (tokens, index)
        if self.class_specific and name not in self.ctx:
            if self._random_init:  # CoOp's CSC: an independent draw per class
                init = torch.randn(len(classnames), self.n_ctx, self._init.shape[-1]) * 0.02  # (K, n, w)
            else:
                init = self._init.expand(len(classnames), -1, -1)  # (K, n, w): the init words for every class
            self.ctx[name] = nn.Parameter(init.to(self.backbone.device).clone())

    def context(self, class_set: str) -> Tensor:
        """``(n, w)`` shared context, or ``(K, n, w)`` for CSC."""
        return self.ctx[class_set] if self.class_specific else self.ctx

    def forward(self, class_set: str, shift: Tensor | None = None) -> Tensor:
        """Class text features ``(K, d)``; with a per-image ``shift (B, w)`` (CoCoOp), ``(B, K, d)``."""
        tokens, index = self._layouts[class_set]
        device = self.backbone.device
        ctx = self.context(class_set)  # (n, w) or (K, n, w)
        if shift is not None:
            ctx = (ctx[None, None] if ctx.dim() == 2 else ctx[None]) + shift[:, None, None, :]  # (B, 1|K, n, w)
        return self.backbone.encode_with_context(tokens.to(device), ctx, index.to(device))
