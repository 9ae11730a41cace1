"""Classification heads, chosen in YAML by ``class_path`` (short names below)."""

from aape_lightning.heads.aape import AAPEHead
from aape_lightning.heads.base import ClassificationHead, HeadOutput, zero_shot_logits
from aape_lightning.heads.cocoop import CoCoOpHead
from aape_lightning.heads.coop import CoOpHead
from aape_lightning.heads.cupl import CuPLHead
from aape_lightning.heads.kgcoop import KgCoOpHead
from aape_lightning.heads.linear_probe import LinearProbeHead
from aape_lightning.heads.prompt_learner import PromptLearner
from aape_lightning.heads.zero_shot import ZeroShotHead

__all__ = [
    "AAPEHead",
    "ClassificationHead",
    "CoCoOpHead",
    "CoOpHead",
    "CuPLHead",
    "HeadOutput",
    "KgCoOpHead",
    "LinearProbeHead",
    "PromptLearner",
    "ZeroShotHead",
    "zero_shot_logits",
]
