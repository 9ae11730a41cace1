"""The VQA DataModule: questions with their images, answers and (for the AAPE) the images' captions."""

from __future__ import annotations

import random
from typing import Literal

import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from aape_lightning.data.feature_store import DEFAULT_MAX_GB
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.data.image_dataset import ImageDataset, collate_skipping
from aape_lightning.data.image_decode import open_rgb
from aape_lightning.data.vqa.readers import VQAQuestion, VQAReader
from aape_lightning.errors import DataError

_TEXT_KEYS = ("question", "answers", "answer", "captions", "question_id")


class VQADataset(ImageDataset):
    """ImageDataset whose samples also carry the question's text fields."""

    def __getitem__(self, index: int) -> dict | None:
        sample = super().__getitem__(index)
        if sample is not None:
            item: VQAQuestion = self.items[index]
            sample.update(question=item.question, answers=list(item.answers), answer=item.answer,
                          captions=list(item.captions), question_id=item.question_id)  # fmt: skip
        return sample


def collate_questions(samples: list[dict | None]) -> dict:
    """``collate_skipping``, with the text fields kept as lists of B (answers, captions: B lists)."""
    good = [s for s in samples if s is not None]
    if not good:
        return {"skipped": len(samples)}
    texts = {k: [s.pop(k) for s in good] for k in _TEXT_KEYS}
    batch = collate_skipping(good)
    batch.update(texts, skipped=len(samples) - len(good))
    return batch


class VQADataModule(ImageDataModule):
    """Batches: ``{"image": (B, 3, H, W), "question": B str, "answers": B lists, "answer": B str,
    "captions": B lists, "question_id": B str, "path", "index", "label", "cacheable", "skipped"}``.

    In-context examples (K-shot, MAGMA's setting) are drawn by the task from the training split
    with ``context_examples``.

    Args:
        reader: VQAv2Reader or DemoVQAReader; may be omitted for ``predict``.
        train_split: the split trained on and drawn in-context examples from.
        test_split: the split evaluated.
        shots: finetune on this many training questions (drawn with ``seed``); None: all.
        seed: the draw of the ``shots`` questions.
    """

    def __init__(
        self,
        reader: VQAReader | None = None,
        train_split: str = "train",
        test_split: str = "test",
        shots: PositiveInt | None = None,
        seed: NonNegativeInt = 1,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 100,
        num_workers: NonNegativeInt = 2,
        augment: bool = False,
        predict_dir: str | None = None,
        on_bad_image: Literal["fail", "skip"] = "fail",
        feature_store: bool = True,
        feature_views: NonNegativeInt = 0,
        feature_store_gb: PositiveFloat = DEFAULT_MAX_GB,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augment, predict_dir, on_bad_image,
                         feature_store, feature_views, feature_store_gb)
        if shots is not None and shots < 1:
            raise DataError(f"VQADataModule: shots={shots} must be at least 1 (or null for every question)")
        self.reader, self.train_split, self.test_split = reader, train_split, test_split
        self.shots, self.seed = shots, seed
        self.splits: dict[str, list[VQAQuestion]] | None = None

    def prepare_data(self) -> None:
        if self.reader is not None:
            self.reader.prepare()

    def _read(self) -> dict[str, list[VQAQuestion]]:
        if self.reader is None:
            raise DataError("VQA training and testing need data: set data.reader (VQAv2Reader or DemoVQAReader)")
        return self.reader.read()

    def setup(self, stage: str) -> None:
        if self.splits is None and stage != "predict":
            self.splits = self._read()
            for split in {"fit": [self.train_split], "test": [self.test_split]}.get(stage, []):
                if not self.splits.get(split):
                    raise DataError(f"{self.reader.root}: VQA split {split!r} is empty or absent; it has {sorted(self.splits)}")

    def questions(self, split: str) -> list[VQAQuestion]:
        items = (self.splits or {}).get(split, [])
        if split == self.train_split and self.shots is not None:
            items = random.Random(f"vqa-shots/{self.seed}").sample(items, min(self.shots, len(items)))
        return items

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.questions(self.train_split), True, VQADataset, collate_questions)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.questions(self.test_split), False, VQADataset, collate_questions)

    def context_examples(self, k: int, key: str) -> tuple[torch.Tensor, list[str], list[str]]:
        """``k`` training questions drawn for ``key`` (the same ones on every run): images ``(k, 3, H, W)``, questions, answers."""
        if self.splits is None:
            self.splits = self._read()
        pool = self.questions(self.train_split)
        if len(pool) < k:
            raise DataError(f"{k} in-context examples asked for, but training split {self.train_split!r} has {len(pool)}")
        picked = random.Random(f"vqa-context/{key}").sample(pool, k)
        transform = self._transform(False)
        images = []
        for q in picked:
            images.append(transform(open_rgb(q.path)))
        return torch.stack(images), [q.question for q in picked], [q.answer for q in picked]
