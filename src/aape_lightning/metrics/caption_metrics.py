"""Caption metrics: CIDEr-D and BLEU-4 (pycocoevalcap's scorers), CLIP-S and RefCLIP-S (CLIPScore).

pycocoevalcap's PTBTokenizer runs Stanford CoreNLP (Java); ``tokenize`` does its job in Python:
lower case, the PTB punctuation removed, words split on white space and punctuation. Scores are
reported x100, as captioning papers do.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

import torch
from torch import Tensor

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> str:
    """``"A Dog, running!"`` -> ``"a dog running"`` (what PTBTokenizer + its punctuation filter give)."""
    return " ".join(_WORD.findall(text.lower()))


def coco_caption_scores(hypotheses: dict[Hashable, str], references: dict[Hashable, list[str]]) -> dict[str, float]:
    """Corpus CIDEr-D (pycocoevalcap's ``Cider``: sigma 6, clipped counts, idf over these references) and BLEU-4."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if set(hypotheses) != set(references) or not hypotheses:
        raise ValueError("coco_caption_scores: hypotheses and references must cover the same, non-empty set of images")
    res = {k: [tokenize(v)] for k, v in hypotheses.items()}
    gts = {k: [tokenize(r) for r in references[k]] for k in hypotheses}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)  # pragma: no mutate: verbose only prints; Bleu(n >= 4)[3] is BLEU-4
    return {"CIDEr-D": 100 * float(cider), "BLEU-4": 100 * float(bleu[3])}


def clip_scores(
    image: Tensor, candidate: Tensor, references: Tensor, mask: Tensor, weight: float = 2.5
) -> tuple[Tensor, Tensor]:
    """Per-image CLIP-S and RefCLIP-S (Hessel et al. 2021), from unit CLIP embeddings.

    ``CLIP-S = w * max(cos(image, c), 0)``; ``RefCLIP-S`` is the harmonic mean of CLIP-S and
    ``max(max_r cos(c, r), 0)``. ``image, candidate (B, d)``, ``references (B, M, d)``, ``mask (B, M)``.
    """
    clip_s = weight * (image * candidate).sum(-1).clamp_min(0)  # (B,)  # pragma: no mutate: on (B, d) sum(1) is sum(-1)
    ref_cos = torch.einsum("bd,bmd->bm", candidate, references)  # (B, M)  # pragma: no mutate: einsum's letters may be upper case
    ref_s = ref_cos.masked_fill(~mask, 0.0).max(dim=1).values.clamp_min(0)  # (B,) padding at 0, the floor of the clamp
    refclip_s = 2 * clip_s * ref_s / (clip_s + ref_s).clamp_min(1e-12)  # (B,)
    return clip_s, refclip_s
