"""Data: the generic image part (dataset, loaders, transforms) and each task's subpackage.

Names are imported on first use (``aape data list`` must not wait for torch); the CLI loads
them all so that LightningCLI finds their classes by short name in YAML
(``class_path: CoOpSplitReader``).
"""

from importlib import import_module

_WHERE = {
    "CaptionDataModule": "aape_lightning.data.captions",
    "CaptionReader": "aape_lightning.data.captions",
    "KarpathyReader": "aape_lightning.data.captions",
    "NoCapsDataModule": "aape_lightning.data.captions",
    "NoCapsReader": "aape_lightning.data.captions",
    "VQADataModule": "aape_lightning.data.vqa",
    "VQAReader": "aape_lightning.data.vqa",
    "VQAv2Reader": "aape_lightning.data.vqa",
    "CatalogReader": "aape_lightning.data.classification",
    "ClassificationDataModule": "aape_lightning.data.classification",
    "CoOpSplitReader": "aape_lightning.data.classification",
    "DatasetReader": "aape_lightning.data.classification",
    "ImageFolderReader": "aape_lightning.data.classification",
    "ImageDataModule": "aape_lightning.data.image_datamodule",
    "ImageDataset": "aape_lightning.data.image_dataset",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
