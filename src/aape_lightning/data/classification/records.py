"""The records every classification reader returns, whatever the on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass

from aape_lightning.prompts.keys import nfc


@dataclass(frozen=True)
class LabelledImage:
    """One image of a classification dataset (an ``ImageRecord`` with its class name)."""

    path: str  # absolute image path
    label: int  # index into DatasetSplits.classnames
    classname: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "classname", nfc(self.classname))  # one spelling per name, whatever the source


@dataclass
class DatasetSplits:
    """Train/val/test images and the class list; ``classnames[label]`` names a label."""

    train: list[LabelledImage]
    val: list[LabelledImage]
    test: list[LabelledImage]
    classnames: list[str]
    template: str = "a photo of a {}."
    prompts: str | None = None  # the dataset's own prompt bank file, if it ships one

    def __post_init__(self) -> None:
        self.classnames = [nfc(name) for name in self.classnames]
