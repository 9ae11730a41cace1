"""Metrics that torchmetrics does not provide."""

from aape_lightning.metrics.caption_metrics import clip_scores, coco_caption_scores, tokenize
from aape_lightning.metrics.harmonic_mean import harmonic_mean
from aape_lightning.metrics.vqa_accuracy import normalize_answer, vqa_accuracy

__all__ = ["clip_scores", "coco_caption_scores", "harmonic_mean", "normalize_answer", "tokenize", "vqa_accuracy"]
