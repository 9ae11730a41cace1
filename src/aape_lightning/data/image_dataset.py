"""A map-style dataset of image records; batches are dicts with named keys."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

from torch.utils.data import Dataset, default_collate

from aape_lightning.data.image_decode import open_rgb
from aape_lightning.data.image_record import ImageRecord
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Yields ``{"image", "label", "index", "path", "cacheable"}``; label -1 for unlabelled images.

    ``cacheable`` says the transform is deterministic, so a frozen encoder's output for this
    path may be reused across epochs.
    """

    def __init__(
        self,
        items: Sequence[ImageRecord],
        transform: Callable,
        deterministic: bool = True,
        on_bad_image: Literal["fail", "skip"] = "fail",
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.deterministic = deterministic
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict | None:
        item = self.items[index]
        try:
            image = self.transform(open_rgb(item.path))
        except (OSError, ValueError) as err:
            if self.on_bad_image == "skip":
                log.warning("skipping unreadable image %s (%s)", item.path, err)
                return None
            raise DataError(
                f"cannot read image {item.path} ({err}); replace or remove the file, or set data.on_bad_image=skip"
            ) from err
        # one sample: image (3, H, W), label int, index int, path str, cacheable bool
        return {"image": image, "label": item.label, "index": index, "path": item.path, "cacheable": self.deterministic}


def collate_skipping(samples: list[dict | None]) -> dict:
    """Collate the readable samples; ``batch["skipped"]`` counts the unreadable ones (no "image" if all were)."""
    good = [s for s in samples if s is not None]
    if not good:
        return {"skipped": len(samples)}
    # image (B, 3, H, W), label (B,), index (B,), path [B], cacheable (B,), skipped int
    batch = default_collate(good)
    batch["skipped"] = len(samples) - len(good)
    return batch
