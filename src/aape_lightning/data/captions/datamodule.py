"""The caption DataModule: images with their reference captions, for retrieval, captioning and VQA."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from aape_lightning.data.captions.readers import CaptionReader
from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits
from aape_lightning.data.feature_store import DEFAULT_MAX_GB
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.data.image_dataset import ImageDataset, collate_skipping
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


class CaptionDataset(ImageDataset):
    """ImageDataset whose samples also carry ``captions`` (list of str) and ``image_id`` (str)."""

    def __getitem__(self, index: int) -> dict | None:
        sample = super().__getitem__(index)
        if sample is not None:
            item = self.items[index]
            sample.update(captions=list(item.captions), image_id=item.image_id)
        return sample


def collate_captions(samples: list[dict | None]) -> dict:
    """``collate_skipping``, with ``captions`` kept as a list of lists (images have different counts)."""
    good = [s for s in samples if s is not None]
    if not good:
        return {"skipped": len(samples)}
    texts = [s.pop("captions") for s in good]  # B x [n_i captions]
    ids = [s.pop("image_id") for s in good]  # B
    batch = collate_skipping(good)
    batch.update(captions=texts, image_id=ids, skipped=len(samples) - len(good))
    return batch


class CaptionDataModule(ImageDataModule):
    """Captioned images from any caption reader; batches are

    ``{"image": (B, 3, H, W), "captions": B lists of str, "image_id": B str, "index": (B,) position in
    the split, "path": B str, "cacheable": (B,), "label": (B,) all -1, "skipped": int}``.

    Evaluation under DDP splits images over ranks without padding (each image counted once;
    ``index`` identifies it across ranks). A split the reader lacks gives no loader (e.g. no
    validation). The loader arguments are :class:`~aape_lightning.data.image_datamodule.ImageDataModule`'s.

    Args:
        reader: the caption reader (KarpathyReader, DemoCaptionReader); may be omitted for ``predict``
            when the model has its own caption gallery.
        train_split: the split ``fit`` trains on.
        val_split: the split validated on; None for no validation.
        test_split: the split ``test`` evaluates.
        max_captions: keep at most this many captions per image (COCO has 5 to 7; retrieval
            benchmarks use 5); None keeps all.
        gallery: for ``predict``, a file of captions to rank for each image (one per line, or a
            JSON list); default the test split's captions.
        top_k: captions written per image by ``predict`` (data options, unlike model ones, can be
            changed when predicting from a checkpoint).
    """

    def __init__(
        self,
        reader: CaptionReader | None = None,
        train_split: str = "train",
        val_split: str | None = "val",
        test_split: str = "test",
        max_captions: PositiveInt | None = 5,
        gallery: str | None = None,
        top_k: PositiveInt = 5,
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
        self.reader = reader
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split
        if max_captions is not None and max_captions < 1:
            raise DataError(f"CaptionDataModule: max_captions={max_captions} must be at least 1 (or null for all)")
        self.max_captions = max_captions
        self.gallery_file = gallery
        if top_k < 1:
            raise DataError(f"CaptionDataModule: top_k={top_k} must be at least 1")
        self.top_k = top_k
        self.splits: CaptionSplits | None = None

    def prepare_data(self) -> None:
        if self.reader is not None:
            self.reader.prepare()

    def setup(self, stage: str) -> None:
        if self.splits is not None or (stage == "predict" and self.reader is None):
            return
        if self.reader is None:
            raise DataError(f"'{stage}' needs data: set data.reader (e.g. KarpathyReader with its root)")
        self.splits = self.reader.read()
        needed = {"fit": [self.train_split], "test": [self.test_split], "validate": [self.val_split]}.get(stage, [])
        for split in needed:
            if split is not None and not self.splits.get(split):
                have = sorted(k for k, v in self.splits.splits.items() if v)
                raise DataError(f"{self.reader.root}: caption split {split!r} is empty or absent; it has {have}")

    def images(self, split: str | None) -> list[CaptionedImage]:
        """A split's images, captions cut to ``max_captions``; [] when the split is None or absent."""
        if split is None or self.splits is None:
            return []
        cut = self.max_captions
        return [CaptionedImage(r.path, r.captions[:cut], r.image_id) for r in self.splits.get(split)]

    def _caption_loader(self, split: str | None, train: bool) -> DataLoader | list:
        items = self.images(split)
        if not items:
            return []
        return self._loader(items, train, dataset_class=CaptionDataset, collate_fn=collate_captions)

    def train_dataloader(self) -> DataLoader:
        return self._caption_loader(self.train_split, train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._caption_loader(self.val_split, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._caption_loader(self.test_split, train=False)

    def gallery(self) -> list[str]:
        """What ``predict`` ranks for each image: the ``gallery`` file, else the test split's distinct captions."""
        if self.gallery_file:
            texts = read_caption_file(Path(self.gallery_file).expanduser())
        else:
            if self.splits is None and self.reader is not None:
                self.splits = self.reader.read()
            texts = [c for r in self.images(self.test_split) for c in r.captions]
        texts = list(dict.fromkeys(texts))
        if not texts:
            raise DataError("predict needs captions to rank: set data.gallery (a caption file) or data.reader")
        return texts


def read_caption_file(path: Path) -> list[str]:
    """Captions from a text file (one per line) or a JSON list of strings; blank lines are dropped."""
    if not path.is_file():
        raise DataError(f"gallery {path} does not exist; pass a text file (one caption per line) or a JSON list")
    raw = path.read_text(encoding="utf-8")
    try:
        texts = json.loads(raw) if path.suffix == ".json" else raw.splitlines()
    except json.JSONDecodeError as err:
        raise DataError(f"gallery {path}: not valid JSON ({err}); pass a JSON list of captions") from err
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise DataError(f"gallery {path}: expected a JSON list of caption strings")
    return [t.strip() for t in texts if t.strip()]
