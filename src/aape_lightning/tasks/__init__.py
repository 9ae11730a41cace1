"""One thin LightningModule per task, on a shared frozen-backbone base."""

from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.captioning import CaptioningTask
from aape_lightning.tasks.classification import ClassificationTask
from aape_lightning.tasks.optim import OptimSchedule
from aape_lightning.tasks.prefix_lm_task import PrefixLMTask
from aape_lightning.tasks.retrieval import RetrievalTask
from aape_lightning.tasks.vqa import VQATask

__all__ = ["CaptioningTask", "CheckpointMismatchError", "ClassificationTask", "FrozenBackboneTask", "OptimSchedule",
           "PrefixLMTask",
           "RetrievalTask", "VQATask"]
