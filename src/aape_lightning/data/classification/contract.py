"""What a classification task reads from its DataModule, stated once instead of probed for."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ClassificationData(Protocol):
    """The classification task's view of its data; ``ClassificationDataModule`` implements it.

    A task checks ``isinstance(trainer.datamodule, ClassificationData)``: without such data
    (predicting from a folder), class names and template come from the checkpoint.
    """

    class_sets: dict[str, list[str]]  # class names per set ("base", "new", "all", ...), in label order
    train_set: str  # the set trained and validated on
    test_sets: list[str]  # the sets tested, in test-dataloader order
    template: str | None  # the class template, e.g. "a photo of a {}."; None before the data is read

    def prompts_for(self, class_set: str) -> list[list[str]]:
        """A class set's prompt sentences, one list per class in label order."""
        ...
