"""The records every classification reader returns, whatever the on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelledImage:
    """One image of a classification dataset (an ``ImageRecord`` with its class name)."""

    path: str  # absolute image path
    label: int  # index into DatasetSplits.classnames
    classname: str


@dataclass
class DatasetSplits:
    """Train/val/test images and the class list; ``classnames[label]`` names a label."""

    train: list[LabelledImage]
    val: list[LabelledImage]
    test: list[LabelledImage]
    classnames: list[str]
    template: str = "a photo of a {}."
    prompts: str | None = None  # the dataset's own prompt bank file, if it ships one
