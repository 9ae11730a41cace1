"""CLIP's evaluation preprocessing and CoOp's training augmentation, sized from the backbone."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T


def clip_transform(size: int, mean: Sequence[float], std: Sequence[float], augment: bool = False) -> T.Compose:
    """``augment=False``: resize + centre crop (CLIP); ``True``: random resized crop + flip (CoOp)."""
    bicubic = T.InterpolationMode.BICUBIC
    if augment:
        geometry = [T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=bicubic), T.RandomHorizontalFlip()]
    else:
        geometry = [T.Resize(size, interpolation=bicubic), T.CenterCrop(size)]
    return T.Compose([T.Lambda(lambda im: im.convert("RGB")), *geometry, T.ToTensor(), T.Normalize(mean, std)])
