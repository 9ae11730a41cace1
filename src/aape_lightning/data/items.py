"""The records every reader returns, whatever the on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    path: str  # absolute image path
    label: int  # index into DatasetSplits.classnames
    classname: str


@dataclass
class DatasetSplits:
    """Train/val/test items and the class list; ``classnames[label]`` names a label."""

    train: list[Item]
    val: list[Item]
    test: list[Item]
    classnames: list[str]
    template: str = "a photo of a {}."
    prompts: str | None = None  # the dataset's own prompt bank file, if it ships one
