"""What an image dataset needs of a record, whatever task it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ImageRecord(Protocol):
    """One image file and its label; tasks' records (e.g. ``LabelledImage``) carry more."""

    @property
    def path(self) -> str: ...  # absolute image path

    @property
    def label(self) -> int: ...  # -1 for an unlabelled image


@dataclass(frozen=True)
class UnlabelledImage:
    """An image to predict on: no label, so batches still have a ``label`` key (-1)."""

    path: str
    label: int = -1
