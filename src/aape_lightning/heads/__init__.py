"""Classification heads, chosen in YAML by ``class_path`` (short names below)."""

from aape_lightning.heads.aape import AAPEHead
from aape_lightning.heads.base import ClassificationHead, HeadOutput, zero_shot_logits
from aape_lightning.heads.zero_shot import ZeroShotHead

__all__ = ["AAPEHead", "ClassificationHead", "HeadOutput", "ZeroShotHead", "zero_shot_logits"]
