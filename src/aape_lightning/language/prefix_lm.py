"""LiMBeR's prefix LM: a frozen causal LM reads linear maps of the frozen CLIP image feature.

Input sequence of one sample (E = the LM's width):
``[AAPE map (n_aape, E)] [image map (k, E)] [text tokens]``; the AAPE tokens are a prefix to
LiMBeR's image tokens and present only with ``use_aape`` (off: LiMBeR alone, the baseline).
Only the two linear maps train; the LM and CLIP stay frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aape_lightning.language.frozen_lm import FrozenLM

Segment = tuple[Tensor | list[int], bool]  # embeddings (n, E) or token ids, and whether they are LM targets


class PrefixLM(nn.Module):
    """The linear image map, the AAPE map, sequence assembly, the LM loss and decoding.

    Args:
        lm: the frozen LM.
        image_dim: d, CLIP's embedding width.
        num_image_tokens: k, LM input embeddings the image is mapped to (here from CLIP's pooled
            embedding by one linear map; LiMBeR maps its image encoder's features the same way).
        use_aape: prefix the mapped AAPE (False: LiMBeR alone).
        num_aape_tokens: LM input embeddings the AAPE is mapped to.
    """

    def __init__(
        self, lm: FrozenLM, image_dim: int, num_image_tokens: int = 4, use_aape: bool = True, num_aape_tokens: int = 1
    ) -> None:
        super().__init__()
        if num_image_tokens < 1 or num_aape_tokens < 1:
            raise ValueError(f"PrefixLM: num_image_tokens={num_image_tokens}, num_aape_tokens={num_aape_tokens} must be >= 1")
        self.lm = lm
        self.k, self.n_aape, width = num_image_tokens, num_aape_tokens, lm.width
        self.image_map = nn.Linear(image_dim, num_image_tokens * width)
        self.aape_map = nn.Linear(image_dim, num_aape_tokens * width) if use_aape else None

    @property
    def use_aape(self) -> bool:
        return self.aape_map is not None

    def prefix(self, image: Tensor, aape: Tensor | None = None) -> Tensor:
        """``image (B, d)`` and ``aape (B, d)`` -> prefix embeddings ``(B, P, E)``, P = [n_aape +] k."""
        batch, width = image.shape[0], self.lm.width
        w = self.image_map.weight
        tokens = self.image_map(image.to(w.dtype)).view(batch, self.k, width)  # (B, k, E)
        if self.aape_map is None:
            return tokens.float()
        if aape is None:
            raise ValueError("PrefixLM: use_aape is on but no AAPE was given")
        mapped = self.aape_map(aape.to(w.dtype)).view(batch, self.n_aape, width)  # (B, n_aape, E)
        return torch.cat([mapped, tokens], dim=1).float()  # (B, n_aape + k, E)

    def assemble(self, samples: list[list[Segment]], left_pad: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Concatenate each sample's segments and pad: embeddings ``(B, L, E)``, mask ``(B, L)``, labels ``(B, L)``.

        Labels are -100 except on target token segments (HF shifts them inside the LM). Left
        padding for generation (new tokens follow the last real one), right padding for the loss.
        """
        device = self.image_map.weight.device
        rows, labels = [], []
        for segments in samples:
            parts, target = [], []
            for seg, is_target in segments:
                if isinstance(seg, Tensor):
                    parts.append(seg.float())  # (n, E)
                    target += [-100] * seg.shape[0]
                elif seg:
                    parts.append(self.lm.embed(torch.tensor(seg, device=device)).float())  # (n, E)
                    target += list(seg) if is_target else [-100] * len(seg)
            rows.append(torch.cat(parts))  # (L_i, E)
            labels.append(torch.tensor(target, device=device))  # (L_i,)
        length = max(r.shape[0] for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[1])  # (B, L, E)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)  # (B, L)
        out_labels = torch.full((len(rows), length), -100, dtype=torch.long, device=device)  # (B, L)
        for i, (row, lab) in enumerate(zip(rows, labels)):
            span = slice(length - row.shape[0], length) if left_pad else slice(0, row.shape[0])
            embeds[i, span], mask[i, span], out_labels[i, span] = row, 1, lab
        return embeds, mask, out_labels

    def loss(self, samples: list[list[Segment]]) -> Tensor:
        """Mean next-token cross-entropy over the target tokens of every sample."""
        embeds, mask, labels = self.assemble(samples, left_pad=False)
        logits = self.lm.model(inputs_embeds=embeds, attention_mask=mask).logits  # (B, L, V)
        # position t predicts token t + 1
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)

    @torch.no_grad()
    def generate(self, samples: list[list[Segment]], max_new_tokens: int | list[int], num_beams: int = 1) -> list[list[int]]:
        """Greedy (``num_beams=1``) or beam decoding; each sample stops at EOS or its own ``max_new_tokens``.

        Greedy output cut at a sample's length equals decoding that sample alone to that length;
        with beams, the batch decodes to the longest length and each result is cut.
        """
        limits = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(samples)
        if min(limits) < 1:
            raise ValueError(f"PrefixLM.generate: max_new_tokens must be >= 1, got {min(limits)}")
        embeds, mask, _ = self.assemble(samples, left_pad=True)
        out = self.lm.model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max(limits), min_new_tokens=0,
            num_beams=num_beams, do_sample=False, eos_token_id=self.lm.eos_id, pad_token_id=self.lm.pad_id,
        )  # (B, <= max(limits)): new tokens only when decoding from embeddings
        results = []
        for ids, limit in zip(out.tolist(), limits):
            ids = ids[:limit]
            results.append(ids[: ids.index(self.lm.eos_id)] if self.lm.eos_id in ids else ids)
        return results
