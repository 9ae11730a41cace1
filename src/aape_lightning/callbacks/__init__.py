"""Callbacks the CLI always adds: run records and prediction output."""

from aape_lightning.callbacks.prediction_writer import PredictionWriter
from aape_lightning.callbacks.run_record import RunRecord, environment

__all__ = ["PredictionWriter", "RunRecord", "environment"]
