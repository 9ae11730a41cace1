"""The records every caption reader returns, whatever the on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CaptionedImage:
    """One image and its reference captions (an ``ImageRecord``: ``label`` is always -1)."""

    path: str  # absolute image path
    captions: tuple[str, ...]
    image_id: str  # the dataset's own id (COCO id, Flickr30k file name, demo file name)
    label: int = -1


@dataclass
class CaptionSplits:
    """A caption dataset's images per split name ("train", "val", "test"; absent splits are empty)."""

    name: str
    splits: dict[str, list[CaptionedImage]] = field(default_factory=dict)

    def get(self, split: str) -> list[CaptionedImage]:
        return self.splits.get(split, [])
