"""The generic image part: records in, named batch keys out; predict over a folder of images."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.data.image_dataset import ImageDataset, collate_skipping
from aape_lightning.data.image_record import UnlabelledImage
from aape_lightning.errors import DataError


def to_tensor(im):
    return torch.zeros(3, 2, 2)


def test_dataset_yields_named_keys_and_collate_counts_skipped(tmp_path):
    good, bad = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (4, 4)).save(good)
    bad.write_bytes(b"not an image")
    ds = ImageDataset([UnlabelledImage(str(good)), UnlabelledImage(str(bad))], to_tensor, on_bad_image="skip")
    sample = ds[0]
    assert sample["label"] == -1 and sample["index"] == 0 and sample["path"] == str(good) and sample["cacheable"]
    assert ds[1] is None
    batch = collate_skipping([ds[0], ds[1]])
    assert set(batch) == {"image", "label", "index", "path", "cacheable", "skipped"} and batch["skipped"] == 1
    assert collate_skipping([None]) == {"skipped": 1}
    with pytest.raises(DataError, match="cannot read image"):
        ImageDataset([UnlabelledImage(str(bad))], to_tensor)[0]


def test_predict_needs_a_folder_with_images(tmp_path):
    with pytest.raises(DataError, match="predict needs a folder of images"):
        ImageDataModule().predict_dataloader()
    with pytest.raises(DataError, match="does not exist"):
        ImageDataModule(predict_dir=str(tmp_path / "nowhere")).predict_dataloader()
    with pytest.raises(DataError, match="holds no images"):
        ImageDataModule(predict_dir=str(tmp_path)).predict_dataloader()


def test_predict_dir_given_a_file_says_it_is_not_a_folder(tmp_path):
    """A file (an image, even) exists: the error says it is not a folder, not that it does not exist."""
    image = tmp_path / "cat.png"
    Image.new("RGB", (4, 4)).save(image)
    with pytest.raises(DataError, match=r"predict_dir .*cat\.png is a file, not a folder; pass the folder") as err:
        ImageDataModule(predict_dir=str(image)).predict_dataloader()
    assert "does not exist" not in str(err.value)
