"""VQA data: the VQAv2 reader and the DataModule (the demo world's reader: ``aape_lightning.demo``)."""

from aape_lightning.data.vqa.datamodule import VQADataModule, VQADataset, collate_questions
from aape_lightning.data.vqa.readers import VQAQuestion, VQAReader, VQAv2Reader

__all__ = ["VQADataModule", "VQADataset", "VQAQuestion", "VQAReader", "VQAv2Reader", "collate_questions"]
