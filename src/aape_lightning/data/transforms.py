"""CLIP's evaluation preprocessing and CoOp's training augmentation, sized from the backbone."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from aape_lightning.data.image_decode import to_rgb


def clip_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool = False,
    interpolation: str = "bicubic",
    resize_mode: str = "shortest",
) -> T.Compose:
    """``augment=False``: resize + centre crop (CLIP); ``True``: random resized crop + flip (CoOp).

    ``interpolation`` and ``resize_mode`` are the backbone's: "shortest" resizes the short side and
    crops the centre (CLIP), "squash" resizes to ``size x size`` (SigLIP). A PIL image not yet decoded by
    ``image_decode.open_rgb`` is made upright RGB by its rules first.
    """
    mode = T.InterpolationMode(interpolation)
    if augment:
        geometry = [T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=mode), T.RandomHorizontalFlip()]
    elif resize_mode == "shortest":
        geometry = [T.Resize(size, interpolation=mode), T.CenterCrop(size)]
    elif resize_mode == "squash":
        geometry = [T.Resize((size, size), interpolation=mode)]
    else:
        raise ValueError(f"resize mode {resize_mode!r} is not one of 'shortest', 'squash'")
    return T.Compose([T.Lambda(to_rgb), *geometry, T.ToTensor(), T.Normalize(mean, std)])


def backbone_transform(backbone, augment: bool = False) -> T.Compose:
    """``clip_transform`` with the size, mean, std, interpolation and resize mode the backbone was trained with."""
    return clip_transform(backbone.image_resolution, backbone.image_mean, backbone.image_std, augment,
                          backbone.image_interpolation, backbone.image_resize_mode)  # fmt: skip
