"""Classification heads, chosen in YAML by ``class_path`` (short names below)."""

from aape_lightning.heads.classification.aape import AAPEHead
from aape_lightning.heads.classification.base import ClassificationHead, HeadOutput, zero_shot_logits
from aape_lightning.heads.classification.cocoop import CoCoOpHead
from aape_lightning.heads.classification.concat_fusion import ConcatFusion
from aape_lightning.heads.classification.coop import CoOpHead
from aape_lightning.heads.classification.cupl import CuPLHead
from aape_lightning.heads.classification.kgcoop import KgCoOpHead
from aape_lightning.heads.classification.learned_context import ContextOptions, LearnedContext
from aape_lightning.heads.classification.linear_probe import LinearProbeHead
from aape_lightning.heads.classification.zero_shot import ZeroShotHead

__all__ = [
    "AAPEHead",
    "ClassificationHead",
    "CoCoOpHead",
    "CoOpHead",
    "ConcatFusion",
    "ContextOptions",
    "CuPLHead",
    "HeadOutput",
    "KgCoOpHead",
    "LearnedContext",
    "LinearProbeHead",
    "ZeroShotHead",
    "zero_shot_logits",
]
