"""Data: readers (layouts), protocols, DataModules."""

from aape_lightning.data.classification import ClassificationDataModule
from aape_lightning.data.items import DatasetSplits, Item
from aape_lightning.data.readers import CoOpSplitReader, DatasetReader, ImageFolderReader
from aape_lightning.errors import DataError

__all__ = [
    "ClassificationDataModule",
    "CoOpSplitReader",
    "DataError",
    "DatasetReader",
    "DatasetSplits",
    "ImageFolderReader",
    "Item",
]

# CoOp's benchmark datasets by name (``BenchmarkReader`` is a short class_path in YAML).
from aape_lightning.data.benchmarks import BENCHMARKS, BenchmarkReader, BenchmarkSpec, benchmark  # noqa: E402

__all__ += ["BENCHMARKS", "BenchmarkReader", "BenchmarkSpec", "benchmark"]
