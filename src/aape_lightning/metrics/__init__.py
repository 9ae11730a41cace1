"""Metrics that torchmetrics does not provide."""

from aape_lightning.metrics.harmonic_mean import harmonic_mean

__all__ = ["harmonic_mean"]
