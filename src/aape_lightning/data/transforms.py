"""CLIP's evaluation preprocessing and CoOp's training augmentation, sized from the backbone."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from aape_lightning.data.image_decode import to_rgb


def clip_transform(size: int, mean: Sequence[float], std: Sequence[float], augment: bool = False) -> T.Compose:
    """``augment=False``: resize + centre crop (CLIP); ``True``: random resized crop + flip (CoOp).

    A PIL image not yet decoded by ``image_decode.open_rgb`` is made upright RGB by its rules first.
    """
    bicubic = T.InterpolationMode.BICUBIC
    if augment:
        geometry = [T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=bicubic), T.RandomHorizontalFlip()]
    else:
        geometry = [T.Resize(size, interpolation=bicubic), T.CenterCrop(size)]
    return T.Compose([T.Lambda(to_rgb), *geometry, T.ToTensor(), T.Normalize(mean, std)])
