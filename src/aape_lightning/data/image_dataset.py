"""A map-style dataset of image records; batches are dicts with named keys."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from aape_lightning.data.image_decode import open_rgb
from aape_lightning.data.image_record import ImageRecord
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Yields ``{"image" or "feature", "label", "index", "path", "cacheable"}``; label -1 for unlabelled images.

    With ``features`` (the DataModule read them from the feature store) a sample carries the
    frozen ``feature`` ``(d,)`` instead of the ``image`` and no file is opened; with ``(N, V, d)``
    features (``data.feature_views``) each sample draws one of its ``V`` stored views, from
    torch's RNG as a random crop would. ``cacheable`` says the transform is deterministic.
    """

    def __init__(
        self,
        items: Sequence[ImageRecord],
        transform: Callable,
        deterministic: bool = True,
        on_bad_image: Literal["fail", "skip"] = "fail",
        features: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.deterministic = deterministic
        self.on_bad_image = on_bad_image
        self.features = features  # (N, d) or (N, V, d) rows, and (N,) bool: stored (False: unreadable image)

    def __len__(self) -> int:
        return len(self.items)

    def pixels(self, index: int) -> Tensor | None:
        """The one place images are decoded: ``(3, H, W)``, or None when unreadable and skipped."""
        item = self.items[index]
        try:
            return self.transform(open_rgb(item.path))
        except (OSError, ValueError) as err:
            if self.on_bad_image == "skip":
                log.warning("skipping unreadable image %s (%s)", item.path, err)
                return None
            raise DataError(
                f"cannot read image {item.path} ({err}); replace or remove the file, or set data.on_bad_image=skip"
            ) from err

    def __getitem__(self, index: int) -> dict | None:
        item = self.items[index]
        sample = {"label": item.label, "index": index, "path": item.path, "cacheable": self.deterministic}
        if self.features is not None:
            rows, stored = self.features
            if not stored[index]:  # unreadable when the store was filled (warned then)
                return None
            row = rows[index]  # (d,) or (V, d)
            # one sample: feature (d,), label int, index int, path str, cacheable bool
            return {"feature": row[int(torch.randint(row.shape[0], ()))] if row.dim() == 2 else row, **sample}
        image = self.pixels(index)
        # one sample: image (3, H, W), label int, index int, path str, cacheable bool
        return None if image is None else {"image": image, **sample}


def collate_skipping(samples: list[dict | None]) -> dict:
    """Collate the readable samples; ``batch["skipped"]`` counts the unreadable ones (no "image" if all were)."""
    good = [s for s in samples if s is not None]
    if not good:
        return {"skipped": len(samples)}
    # image (B, 3, H, W) or feature (B, d), label (B,), index (B,), path [B], cacheable (B,), skipped int
    batch = default_collate(good)
    batch["skipped"] = len(samples) - len(good)
    return batch
