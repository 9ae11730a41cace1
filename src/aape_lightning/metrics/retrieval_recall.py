"""Recall@K for image-text retrieval where each image has several captions, synced across DDP ranks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


def recall_at_k(
    images: Tensor, texts: Tensor, text_owner: Tensor, ks: Sequence[int] = (1, 5, 10),
    chunk: int = 1024,  # pragma: no mutate: the chunk size sets the memory, never the result
) -> dict[str, float]:
    """Image-to-text and text-to-image R@K in percent, scores ``images @ texts.T``.

    ``images (N, d)``, ``texts (T, d)``, ``text_owner (T,)`` the row of ``images`` each text
    describes. Image-to-text: an image is a hit at K when any of its captions is among its K
    best-scored texts; text-to-image: a caption is a hit when its own image is among its K best
    images. A rank is the number of candidates scored strictly higher than the best true one
    (ties go the query's way). Rows are scored ``chunk`` images at a time: O(chunk * T) memory.
    """
    n = images.shape[0]
    if not n or not len(texts):
        return {f"{side}_R@{k}": 0.0 for k in ks for side in ("i2t", "t2i")}
    owner = text_owner.to(images.device).long()  # pragma: no mutate: the device: the same on the CPU tests run on
    # each caption's score with its own image, read from the same chunked product the ranks compare it with: a dot
    # product summed in another order differs in the last bit, and the own image would then outrank itself
    if owner.min() < 0 or owner.max() >= n:
        raise ValueError(f"recall_at_k: text_owner holds rows {int(owner.min())}..{int(owner.max())}; images has rows 0..{n - 1}")
    cols, vals = [], []
    for start in range(0, n, chunk):
        scores = images[start : start + chunk] @ texts.t()  # (c, T)
        mine = ((owner >= start) & (owner < start + scores.shape[0])).nonzero().squeeze(1)  # texts owned here
        cols.append(mine)
        vals.append(scores[owner[mine] - start, mine])
    own = torch.cat(vals)[torch.cat(cols).argsort()]  # (T,): each text is owned once, so cols is a permutation
    t2i_rank = torch.zeros(texts.shape[0], dtype=torch.long, device=images.device)  # (T,)  # pragma: no mutate: dtype and device: integer counts either way, the same on the CPU
    i2t_rank = []
    for start in range(0, n, chunk):
        scores = images[start : start + chunk] @ texts.t()  # (c, T), bit-identical to the first pass
        t2i_rank += (scores > own).sum(0)
        rows = torch.arange(start, start + scores.shape[0], device=images.device)  # (c,)  # pragma: no mutate: the device: the same on the CPU
        positive = owner[None, :] == rows[:, None]  # (c, T)
        best = scores.masked_fill(~positive, -torch.inf).amax(1)  # (c,) -inf for an image without captions
        i2t_rank.append((scores > best[:, None]).sum(1))  # (c,)
    i2t = torch.cat(i2t_rank)  # (N,)
    out = {}
    for k in ks:
        out[f"i2t_R@{k}"] = (i2t < k).float().mean().item() * 100
        out[f"t2i_R@{k}"] = (t2i_rank < k).float().mean().item() * 100
    return out


def _first_of_each(keys: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct key, in increasing key order."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full_like(unique, keys.numel())
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel(), device=keys.device), reduce="amin")  # pragma: no mutate: the device: the same on the CPU
    return first


class RetrievalRecall(Metric):
    """Collects query embeddings of images and embeddings of their captions; ``compute`` gives R@K.

    Every rank's pieces are gathered (uneven sizes allowed); an image seen twice (by index) and
    its captions count once, so a sampler that pads cannot skew the result.
    """

    full_state_update = False

    def __init__(self, ks: Sequence[int] = (1, 5, 10)) -> None:
        super().__init__()
        self.ks = tuple(ks)
        for name in ("image", "image_index", "text", "text_owner", "text_slot"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, image: Tensor, image_index: Tensor, text: Tensor, text_owner: Tensor, text_slot: Tensor) -> None:
        """``image (B, d)`` and ``image_index (B,)`` the images' dataset indices; ``text (T, d)``,
        ``text_owner (T,)`` the dataset index of each caption's image, ``text_slot (T,)`` its position there."""
        self.image.append(image.float())
        self.image_index.append(image_index.long())
        self.text.append(text.float())
        self.text_owner.append(text_owner.long())
        self.text_slot.append(text_slot.long())

    def compute(self) -> dict[str, float]:
        cat = lambda s: torch.cat(s) if isinstance(s, list) else s  # noqa: E731 (a list before sync, a tensor after)
        image, index = cat(self.image), cat(self.image_index)
        text, owner, slot = cat(self.text), cat(self.text_owner), cat(self.text_slot)
        keep = _first_of_each(index)  # (N,) sorted by dataset index
        image, index = image[keep], index[keep]
        width = int(slot.max()) + 1 if slot.numel() else 1  # pragma: no mutate: any width above the largest slot keeps the keys apart
        keep_text = _first_of_each(owner * width + slot)  # (T,)  # pragma: no mutate: any one-to-one key of (owner, slot) does; text order leaves R@K alone
        text, owner = text[keep_text], owner[keep_text]
        return recall_at_k(image, text, torch.searchsorted(index, owner), self.ks)
