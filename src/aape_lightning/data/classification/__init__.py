"""Image classification data: readers (layouts), the dataset catalog, CoOp's protocols, the DataModule."""

from aape_lightning.data.classification.catalog import DatasetSpec
from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.data.classification.contract import ClassificationData
from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.data.classification.readers import CoOpSplitReader, DatasetReader, ImageFolderReader
from aape_lightning.data.classification.records import DatasetSplits, LabelledImage

__all__ = [
    "CatalogReader",
    "ClassificationData",
    "ClassificationDataModule",
    "CoOpSplitReader",
    "DatasetReader",
    "DatasetSpec",
    "DatasetSplits",
    "ImageFolderReader",
    "LabelledImage",
]
