"""VQA data: VQAv2 and demo readers and their DataModule."""

from aape_lightning.data.vqa.datamodule import VQADataModule, VQADataset, collate_questions
from aape_lightning.data.vqa.readers import DemoVQAReader, VQAQuestion, VQAReader, VQAv2Reader

__all__ = ["DemoVQAReader", "VQADataModule", "VQADataset", "VQAQuestion", "VQAReader", "VQAv2Reader", "collate_questions"]
