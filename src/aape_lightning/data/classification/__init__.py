"""Image classification data: readers (layouts), the dataset catalog, CoOp's protocols, the DataModule.

Names are imported on first use, so ``aape data`` starts without torch or lightning.
"""

from importlib import import_module

_WHERE = {
    "CatalogReader": "catalog_reader",
    "ClassificationData": "contract",
    "ClassificationDataModule": "datamodule",
    "CoOpSplitReader": "readers",
    "DatasetReader": "readers",
    "DatasetSpec": "catalog",
    "DatasetSplits": "records",
    "ImageFolderReader": "readers",
    "LabelledImage": "records",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
