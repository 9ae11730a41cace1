"""Writes ``aape predict`` results as CSV: one row per image, class name and probability."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


class PredictionWriter(BasePredictionWriter):
    """Each rank writes its own part; rank 0 merges them into ``output`` sorted by path.

    Args:
        output: the CSV file; relative paths are taken from the trainer's log dir.
    """

    def __init__(self, output: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self._rows: list[dict] = []

    def resolved_output(self, trainer: L.Trainer) -> Path:
        path = Path(self.output)
        return path if path.is_absolute() else Path(trainer.log_dir or trainer.default_root_dir) / path

    def write_on_batch_end(self, trainer, pl_module, prediction: dict, batch_indices, batch, batch_idx, dataloader_idx):
        self._rows += [
            {"path": p, "class": c, "probability": f"{q:.6f}"}
            for p, c, q in zip(prediction["path"], prediction["class"], prediction["probability"])
        ]

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows: list[Any] = [self._rows]
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            rows = [None] * trainer.world_size
            torch.distributed.all_gather_object(rows, self._rows)
        self._rows = []
        path = self.resolved_output(trainer)  # log_dir is a collective: every rank asks
        if not trainer.is_global_zero:
            return
        merged = sorted((r for part in rows for r in part), key=lambda r: r["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "class", "probability"])
            writer.writeheader()
            writer.writerows(merged)
        trainer.print(f"wrote {len(merged)} predictions to {path}")
