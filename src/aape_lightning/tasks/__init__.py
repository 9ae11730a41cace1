"""One thin LightningModule per task, on a shared frozen-backbone base."""

from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.classification import ClassificationTask
from aape_lightning.tasks.retrieval import RetrievalTask

__all__ = ["CheckpointMismatchError", "ClassificationTask", "FrozenBackboneTask", "RetrievalTask"]
