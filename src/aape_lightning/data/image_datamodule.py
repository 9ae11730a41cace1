"""What every image task's DataModule shares: CLIP transforms, loaders, predicting over a folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import lightning as L
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader

from aape_lightning.data.eval_sampler import UnpaddedDistributedSampler
from aape_lightning.data.image_dataset import ImageDataset, collate_skipping
from aape_lightning.data.image_files import IMAGE_SUFFIXES, find_images
from aape_lightning.data.image_record import ImageRecord, UnlabelledImage
from aape_lightning.data.resumable_loader import ResumableDataLoader
from aape_lightning.data.transforms import backbone_transform
from aape_lightning.errors import DataError


class ImageDataModule(L.LightningDataModule):
    """The base of image tasks' DataModules; subclasses read their data and return loaders of it.

    Image size and normalisation come from the model's backbone, so the same data serves any
    CLIP. Evaluation under DDP counts every image once (no sampler padding), and unreadable
    images stop the run or are skipped, as ``on_bad_image`` says.

    Args:
        batch_size: training batch size (per device).
        eval_batch_size: validation/test/predict batch size (per device).
        num_workers: DataLoader workers.
        augment: CoOp's random resized crop + flip for training (else CLIP's centre crop).
        predict_dir: a folder of images (searched recursively) for ``aape predict``; symlinks in it
            that lead out of it are an error (pass their target instead).
        on_bad_image: an unreadable or truncated image stops the run ("fail", naming it) or is
            skipped, logged with its path and counted in ``<stage>/skipped_images`` ("skip").
    """

    def __init__(
        self,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 100,
        num_workers: NonNegativeInt = 2,
        augment: bool = True,
        predict_dir: str | None = None,
        on_bad_image: Literal["fail", "skip"] = "fail",
    ) -> None:
        super().__init__()
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.augment = augment
        self.predict_dir = predict_dir
        self.on_bad_image = on_bad_image

    def _transform(self, augment: bool):
        return backbone_transform(self.trainer.lightning_module.backbone, augment)

    def _loader(
        self,
        items: Sequence[ImageRecord],
        train: bool,
        dataset_class: type[ImageDataset] = ImageDataset,
        collate_fn: Callable[[list], dict] = collate_skipping,
    ) -> DataLoader:
        """Training: shuffled, augmented if ``augment``; evaluation: in order, split over DDP ranks without padding.

        A task whose records carry more than an image and label passes its ``dataset_class`` and ``collate_fn``.
        """
        augment = train and self.augment
        dataset = dataset_class(
            items, self._transform(augment), deterministic=not augment, on_bad_image=self.on_bad_image
        )
        sampler = None
        if not train and self.trainer is not None and self.trainer.world_size > 1:
            sampler = UnpaddedDistributedSampler(dataset, self.trainer.world_size, self.trainer.global_rank)
        loader = ResumableDataLoader if train else DataLoader  # training resumes mid-epoch bit for bit
        return loader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            collate_fn=collate_fn,
        )

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_dir:
            raise DataError("predict needs a folder of images: pass --data.predict_dir <folder>")
        folder = Path(self.predict_dir).expanduser()
        if folder.exists() and not folder.is_dir():
            raise DataError(f"predict_dir {folder} is a file, not a folder; pass the folder that holds the images")
        if not folder.is_dir():
            raise DataError(f"predict_dir {folder} does not exist; pass a folder of images")
        paths = find_images(folder, fix="pass the link's target as predict_dir")
        if not paths:
            raise DataError(f"predict_dir {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return self._loader([UnlabelledImage(str(p.resolve())) for p in paths], train=False)
