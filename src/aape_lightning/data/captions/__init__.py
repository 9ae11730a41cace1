"""Caption data: readers for Karpathy-split COCO / Flickr30k and the demo captions, and their DataModule."""

from aape_lightning.data.captions.datamodule import CaptionDataModule, CaptionDataset, collate_captions
from aape_lightning.data.captions.nocaps import NOCAPS_DOMAINS, NoCapsDataModule, NoCapsReader
from aape_lightning.data.captions.readers import CaptionReader, DemoCaptionReader, KarpathyReader
from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits

__all__ = [
    "CaptionDataModule",
    "CaptionDataset",
    "CaptionReader",
    "CaptionSplits",
    "CaptionedImage",
    "DemoCaptionReader",
    "KarpathyReader",
    "NOCAPS_DOMAINS",
    "NoCapsDataModule",
    "NoCapsReader",
    "collate_captions",
]
