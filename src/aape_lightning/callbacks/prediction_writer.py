"""Writes ``aape predict`` results as CSV (or JSON): one row per input, the columns a task's ``predict_step`` returns."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from aape_lightning.errors import UnwritableError


class PredictionWriter(BasePredictionWriter):
    """Each rank writes its own part; rank 0 merges them into ``output`` (sorted by path if there is one).

    ``predict_step`` returns ``{column: [value per input]}``; columns are written in that order,
    floats with 6 decimals, so any task (class and probability, a caption, an answer) needs no writer of its own.

    Args:
        output: the CSV file (a ``.json`` name writes a JSON list of rows instead); relative paths
            are taken from the trainer's log dir.
    """

    def __init__(self, output: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self._rows: list[dict] = []
        self._columns: list[str] = []

    def resolved_output(self, trainer: L.Trainer) -> Path:
        path = Path(self.output)
        return path if path.is_absolute() else Path(trainer.log_dir or trainer.default_root_dir) / path

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Refuse an output that cannot be written before any image is scored, not after."""
        path = self.resolved_output(trainer)  # log_dir is a collective: every rank asks
        if getattr(stage, "value", stage) != "predict" or not trainer.is_global_zero:
            return
        existing = next(p for p in (path, *path.parents) if p.exists())
        why = None
        if existing == path and path.is_dir():
            why = "it is a folder"
        elif existing != path and not existing.is_dir():
            why = f"{existing} is a file, not a folder"
        elif not os.access(existing, os.W_OK):
            why = f"no write permission on {existing}"
        if why:
            raise UnwritableError(f"cannot write predictions to {path}: {why}; pass --predictions.output <a writable .csv>")

    def write_on_batch_end(self, trainer, pl_module, prediction: dict, batch_indices, batch, batch_idx, dataloader_idx):
        columns = list(prediction)
        self._columns = self._columns or columns
        self._rows += [dict(zip(columns, row)) for row in zip(*(prediction[c] for c in columns))]

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows: list[Any] = [(self._columns, self._rows)]
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            rows = [None] * trainer.world_size
            torch.distributed.all_gather_object(rows, (self._columns, self._rows))
        self._rows, self._columns = [], []
        path = self.resolved_output(trainer)  # log_dir is a collective: every rank asks
        if not trainer.is_global_zero:
            return
        columns = next((cols for cols, _ in rows if cols), [])
        merged = [r for _, part in rows for r in part]
        if "path" in columns:
            merged.sort(key=lambda r: r["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(merged, indent=1), encoding="utf-8")
            trainer.print(f"wrote {len(merged)} predictions to {path}")
            return
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in r.items()} for r in merged)
        trainer.print(f"wrote {len(merged)} predictions to {path}")
