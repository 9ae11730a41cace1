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

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.heads.classification.base import check_class_names


@dataclass(frozen=True)
class ContextOptions:
    """How a CoOp-family head builds its learned context.

    Args:
        n_ctx: number of context vectors (ignored when ``ctx_init`` is given: its number of words,
            as CoOp counts them, each vector the embedding of the next token).
        ctx_init: words to initialise the context from, e.g. "a photo of a"; None: N(0, 0.02).
        class_specific: one context per class (CSC) instead of one shared ("unified") context;
            random contexts are one N(0, 0.02) draw of all classes' vectors when the classes
            arrive, as CoOp draws them (the same seed gives the same context). With ``ctx_init``
            every class starts from the words: CoOp's code then ignores CSC and learns one shared
            context; here the flag is honoured (no silent override).
        class_token_position: "end", "middle" or "front".
        init_leftover: when BPE splits an init word ("a photo of a sattelitephoto": 5 words,
            8 tokens), the tokens past the first ``n_ctx``: "keep" them as fixed token embeddings
            after the context, as CoOp's prompt ``"<ctx_init> <class>."`` does; "drop" them
            (``[ctx][class].``). The same when no word splits.
    """

    n_ctx: PositiveInt = 16
    ctx_init: str | None = None
    class_specific: bool = False
    class_token_position: Literal["end", "middle", "front"] = "end"
    init_leftover: Literal["keep", "drop"] = "keep"


class LearnedContext(nn.Module):
    """Learned context ``[SOS][ctx_1..ctx_n][class tokens][.][EOS]``, pooled at EOT (CoOp, Zhou et al. 2022)."""

    def __init__(self, backbone: FrozenCLIP, options: ContextOptions = ContextOptions()) -> None:
        super().__init__()
        object.__setattr__(self, "backbone", backbone)
        backbone.require_token_level(type(self).__name__)
        n_ctx, ctx_init = options.n_ctx, options.ctx_init
        class_specific, class_token_position = options.class_specific, options.class_token_position
        if class_token_position not in ("end", "middle", "front"):
            raise ValueError(f"class_token_position {class_token_position!r} is not one of 'end', 'middle', 'front'")
        if options.init_leftover not in ("keep", "drop"):
            raise ValueError(f"init_leftover {options.init_leftover!r} is not one of 'keep', 'drop'")
        self.width = backbone.token_width
        init: Tensor | None = None  # (n, w); None: random CSC, drawn per class set in add_class_set
        if ctx_init:
            words = ctx_init.replace("_", " ").strip()
            n_ctx = len(words.split(" "))  # CoOp: one vector per word, the first n token embeddings
            start = backbone.context_start  # after SOS where the tokenizer adds one
            init = backbone.embed_tokens(backbone.tokenize([words]))[0, start : start + n_ctx].cpu()  # (n, w)
        elif not class_specific:
            init = nn.init.normal_(torch.empty(n_ctx, self.width), std=0.02)  # (n, w), CoOp's draw
        # the text before the class name; its first n tokens after SOS are replaced by the context
        keep = ctx_init and options.init_leftover == "keep"
        self.prefix = words if keep else " ".join(["X"] * n_ctx)
        if backbone.token_count(self.prefix) + 1 > backbone.context_length:
            raise ValueError(
                f"n_ctx={n_ctx} leaves no room for a class name in the backbone's context length "
                f"of {backbone.context_length} tokens; use n_ctx <= {backbone.context_length - 3}"
            )
        self.n_ctx, self.class_specific, self.position = n_ctx, class_specific, class_token_position
        self._init = init
        if class_specific:
            self.ctx = nn.ParameterDict()  # class set -> (K, n, w), created when its classes are known
        else:
            self.ctx = nn.Parameter(init.clone())  # (n, w)
        self._layouts: dict[str, tuple[Tensor, Tensor]] = {}

    def add_class_set(self, name: str, classnames: list[str]) -> None:
        """Tokenize CoOp's prompt ``<prefix> <class>.`` for a class set; CSC creates that set's contexts.

        The prefix is ``X*n`` (random init, or "drop") or the init words themselves ("keep"); either
        way its first n tokens after SOS are replaced by the context, the rest stay as tokenized.
        """
        pattern = self.prefix.replace("{", "{{").replace("}", "}}") + " {}."
        check_class_names(self.backbone, name, classnames, pattern, f"or lower n_ctx ({self.n_ctx})")
        tokens = self.backbone.tokenize([pattern.format(c) for c in classnames]).cpu()  # (K, L)
        names_only = [self.backbone.name_token_count(c) for c in classnames]
        # as CoOp: in "front"/"middle" the class slice is the name's token count right after the context
        index = self.backbone.context_layout(tokens.shape[1], self.n_ctx, names_only, self.position)  # (K, L)
        self._layouts[name] = (tokens, index)
        if self.class_specific and name not in self.ctx:
            if self._init is None:  # CoOp's CSC: one N(0, 0.02) draw of every class's context
                init = nn.init.normal_(torch.empty(len(classnames), self.n_ctx, self.width), std=0.02)  # (K, n, w)
            else:
                init = self._init.expand(len(classnames), -1, -1)  # (K, n, w): the init words for every class
            self.ctx[name] = nn.Parameter(init.to(self.backbone.device).clone())  # pragma: no mutate: the device: the same on the CPU tests run on

    def context(self, class_set: str) -> Tensor:
        """``(n, w)`` shared context, or ``(K, n, w)`` for CSC."""
        return self.ctx[class_set] if self.class_specific else self.ctx

    def forward(self, class_set: str, shift: Tensor | None = None) -> Tensor:
        """Class text features ``(K, d)``; with a per-image ``shift (B, w)`` (CoCoOp), ``(B, K, d)``."""
        tokens, index = (t.to(self.backbone.device) for t in self._layouts[class_set])  # (K, L) each  # pragma: no mutate: the device: the same on the CPU tests run on
        ctx = self.context(class_set)  # (n, w) or (K, n, w)
        if shift is not None:
            ctx = ctx + shift[:, None, None, :]  # (B, 1|K, n, w): (n, w) and (K, n, w) both broadcast
        return self.backbone.encode_with_context(tokens, ctx, index)
