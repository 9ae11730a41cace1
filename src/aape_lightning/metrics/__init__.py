"""Metrics that torchmetrics does not provide."""

from aape_lightning.metrics.caption_metrics import clip_scores, coco_caption_scores, tokenize
from aape_lightning.metrics.harmonic_mean import harmonic_mean
from aape_lightning.metrics.retrieval_recall import RetrievalRecall, recall_at_k
from aape_lightning.metrics.vqa_accuracy import normalize_answer, vqa_accuracy

__all__ = ["RetrievalRecall", "clip_scores", "coco_caption_scores", "harmonic_mean", "normalize_answer", "recall_at_k",
           "tokenize", "vqa_accuracy"]
