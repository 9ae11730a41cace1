"""Metrics that torchmetrics does not provide."""

from aape_lightning.metrics.harmonic_mean import harmonic_mean
from aape_lightning.metrics.retrieval_recall import RetrievalRecall, recall_at_k

__all__ = ["RetrievalRecall", "harmonic_mean", "recall_at_k"]
