"""A map-style dataset of image items; batches are dicts with named keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image
from torch.utils.data import Dataset

from aape_lightning.data.items import DataError, Item


class ImageDataset(Dataset):
    """Yields ``{"image", "label", "index", "path", "cacheable"}``; label -1 for unlabelled images.

    ``cacheable`` says the transform is deterministic, so a frozen encoder's output for this
    path may be reused across epochs.
    """

    def __init__(self, items: Sequence[Item], transform: Callable, deterministic: bool = True) -> None:
        self.items = list(items)
        self.transform = transform
        self.deterministic = deterministic

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        try:
            with Image.open(item.path) as im:
                image = self.transform(im)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read image {item.path} ({err}); replace or remove the file") from err
        return {"image": image, "label": item.label, "index": index, "path": item.path, "cacheable": self.deterministic}
