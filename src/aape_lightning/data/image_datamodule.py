"""What every image task's DataModule shares: CLIP transforms, loaders, predicting over a folder."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader, Dataset

from aape_lightning.data.eval_sampler import UnpaddedDistributedSampler
from aape_lightning.data.feature_store import (
    DEFAULT_MAX_GB,
    FeatureStore,
    file_identity,
    namespace,
    record_counts,
    store_root,
)
from aape_lightning.data.image_dataset import ImageDataset, collate_skipping
from aape_lightning.data.image_files import IMAGE_SUFFIXES, find_images
from aape_lightning.data.image_record import ImageRecord, UnlabelledImage
from aape_lightning.data.resumable_loader import ResumableDataLoader, rng_state, set_rng_state
from aape_lightning.data.transforms import backbone_transform
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)
SHARD_ROWS = 4096  # features per shard written while filling


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
        feature_store: batches carry the frozen image features, encoded once into the persistent
            store (``<cache dir>/features``, see docs/feature-store.md) and read by every later run,
            instead of pixels; images are decoded only for what is not stored yet. Augmented
            training batches stay pixels unless ``feature_views`` is set. A task that needs pixels
            (``needs_pixels``) gets them whatever this says.
        feature_views: with ``augment``, precompute this many seeded augmented views of each
            training image once (stored like the rest); each epoch draws one view per image.
            0: fresh augmentation every step, from pixels.
        feature_store_gb: the size bound of the whole store; past it, least recently used shards go.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 100,
        num_workers: NonNegativeInt = 2,
        augment: bool = True,
        predict_dir: str | None = None,
        on_bad_image: Literal["fail", "skip"] = "fail",
        feature_store: bool = True,
        feature_views: NonNegativeInt = 0,
        feature_store_gb: PositiveFloat = DEFAULT_MAX_GB,
    ) -> None:
        super().__init__()
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.augment = augment
        self.predict_dir = predict_dir
        self.on_bad_image = on_bad_image
        self.feature_store, self.feature_views, self.feature_store_gb = feature_store, feature_views, feature_store_gb
        self.store_counts = {"encoded": 0, "read": 0}  # this DataModule's, summed over its loaders

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
        transform = self._transform(augment)
        dataset = dataset_class(items, transform, deterministic=not augment, on_bad_image=self.on_bad_image)
        module = self.trainer.lightning_module if self.trainer is not None else None
        stored = self.feature_store and not getattr(module, "needs_pixels", True) and (not augment or self.feature_views)
        if stored:
            dataset.features = self._stored_features(dataset, self.feature_views if augment else 0)
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

    # -- the feature store ------------------------------------------------------------------
    def _stored_features(self, dataset: ImageDataset, views: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's features ``(N, d)`` (``views``: ``(N, V, d)``) and ``(N,)`` stored, encoding the misses.

        Misses are encoded in item order, in batches of ``eval_batch_size``, under the trainer's
        precision, as an evaluation step would; under DDP each rank encodes its share, then all
        read. Nothing here touches the global random state (a resumed run replays it exactly).
        """
        trainer, module = self.trainer, self.trainer.lightning_module
        backbone = module.backbone
        name, about = namespace(backbone.spec.sha256, dataset.transform, trainer.precision, backbone.device.type)
        about["backbone"] = backbone.spec.name
        store = FeatureStore(store_root(module.hparams.get("cache_dir")), name, about, int(self.feature_store_gb * 2**30))
        idents = []
        for item in dataset.items:
            try:
                idents.append(file_identity(item.path))
            except OSError:
                idents.append(None)  # missing: the pixel pass reports it as on_bad_image says
        per_item = max(views, 1)
        keys = [None if i is None else (i if not views else f"{i}#view{v}") for i in idents for v in range(per_item)]
        found = store.lookup(k for k in keys if k is not None)
        read = len(found)
        todo, seen = [], set()  # (row of keys, item index, view or None): each missing key once
        for row, key in enumerate(keys):
            if key is None or key not in found and key not in seen:
                seen.add(key)
                todo.append((row, row // per_item, row % per_item if views else None))
        encoded = self._encode(dataset, todo[trainer.global_rank :: trainer.world_size], keys, store, backbone)
        found.update(encoded)
        if trainer.world_size > 1:
            trainer.strategy.barrier()
            found.update(store.lookup(k for k in keys if k is not None and k not in found))
        dim = backbone.embed_dim
        rows = torch.zeros(len(keys), dim)
        hit = torch.zeros(len(keys), dtype=torch.bool)
        for row, key in enumerate(keys):
            if key in found:
                rows[row] = torch.from_numpy(found[key])
                hit[row] = True
        rows = rows.view(len(dataset), *([views] if views else []), dim)  # (N, d) or (N, V, d)
        stored = hit.view(len(dataset), per_item).all(dim=1)  # (N,)
        self.store_counts["encoded"] += len(encoded)
        self.store_counts["read"] += read
        if trainer.is_global_zero:
            run = record_counts(trainer.default_root_dir, len(encoded), read)
            log.info("feature store: %d images%s encoded, %d read (this run: %d encoded, %d read)", len(encoded),
                     " x views" if views else "", read, run["encoded"], run["read"])  # fmt: skip
        return rows, stored

    def _encode(self, dataset: ImageDataset, todo: list, keys: list, store: FeatureStore, backbone) -> dict:
        """Decode and encode ``todo``'s images, store them (a shard per ``SHARD_ROWS``); ``{key: row}``."""
        if not todo:
            return {}
        loader = DataLoader(_Pixels(dataset, todo, keys), batch_size=self.eval_batch_size, num_workers=self.num_workers,
                            collate_fn=_collate_pixels, generator=torch.Generator())  # its own seed: global RNG untouched
        out, pending = {}, ([], [])
        state = rng_state()
        try:
            for rows, images in loader:
                if not rows:
                    continue
                with torch.no_grad(), self.trainer.precision_plugin.forward_context():
                    feats = backbone.encode_image(images).float().cpu().numpy()  # (b, d)
                for row, f in zip(rows, feats):
                    if keys[row] is None:  # a file that vanished since, yet decoded: nothing to key it by
                        continue
                    out[keys[row]] = f
                    pending[0].append(keys[row])
                    pending[1].append(f)
                if len(pending[0]) >= SHARD_ROWS:
                    store.add(pending[0], _stack(pending[1]))
                    pending = ([], [])
            store.add(pending[0], _stack(pending[1]))
        finally:
            set_rng_state(state)
        return out

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


class _Pixels(Dataset):
    """The images (or seeded augmented views) to encode into the store: ``(row, (3, H, W))`` or None."""

    def __init__(self, dataset: ImageDataset, todo: list, keys: list) -> None:
        self.dataset, self.todo, self.keys = dataset, todo, keys

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, j: int):
        row, index, view = self.todo[j]
        if view is not None:  # view v of this file: the same crop and flip in every run
            torch.manual_seed(int(hashlib.sha256(self.keys[row].encode()).hexdigest()[:15], 16))
        image = self.dataset.pixels(index)
        return None if image is None else (row, image)


def _collate_pixels(samples: list) -> tuple[list[int], torch.Tensor | None]:
    good = [s for s in samples if s is not None]
    return [r for r, _ in good], torch.stack([im for _, im in good]) if good else None  # (b, 3, H, W)


def _stack(rows: list):
    import numpy as np

    return np.stack(rows) if rows else np.zeros((0, 0), dtype="float32")
