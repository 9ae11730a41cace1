"""Data: the generic image part (dataset, loaders, transforms) and each task's subpackage.

The task subpackages are imported here so that LightningCLI finds their classes by short
name in YAML (``class_path: CoOpSplitReader``).
"""

from aape_lightning.data.captions import (
    CaptionDataModule,
    CaptionReader,
    DemoCaptionReader,
    KarpathyReader,
    NoCapsDataModule,
    NoCapsReader,
)
from aape_lightning.data.classification import (
    CatalogReader,
    ClassificationDataModule,
    CoOpSplitReader,
    DatasetReader,
    ImageFolderReader,
)
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.data.image_dataset import ImageDataset
from aape_lightning.data.vqa import DemoVQAReader, VQADataModule, VQAReader, VQAv2Reader

__all__ = [
    "CaptionDataModule",
    "CaptionReader",
    "CatalogReader",
    "ClassificationDataModule",
    "CoOpSplitReader",
    "DatasetReader",
    "DemoCaptionReader",
    "DemoVQAReader",
    "ImageDataModule",
    "ImageDataset",
    "ImageFolderReader",
    "KarpathyReader",
    "NoCapsDataModule",
    "NoCapsReader",
    "VQADataModule",
    "VQAReader",
    "VQAv2Reader",
]
