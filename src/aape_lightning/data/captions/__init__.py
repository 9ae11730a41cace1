"""Caption data: readers for Karpathy-split COCO / Flickr30k and nocaps, and their DataModule (the demo world's reader:
``aape_lightning.demo``)."""

from aape_lightning.data.captions.datamodule import CaptionDataModule, CaptionDataset, collate_captions
from aape_lightning.data.captions.nocaps import NOCAPS_DOMAINS, NoCapsDataModule, NoCapsReader
from aape_lightning.data.captions.readers import CaptionReader, KarpathyReader
from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits

__all__ = [
    "CaptionDataModule",
    "CaptionDataset",
    "CaptionReader",
    "CaptionSplits",
    "CaptionedImage",
    "KarpathyReader",
    "NOCAPS_DOMAINS",
    "NoCapsDataModule",
    "NoCapsReader",
    "collate_captions",
]
