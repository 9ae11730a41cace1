"""Saves what a run needs to be reproduced next to its logs: environment and the few-shot sample."""

from __future__ import annotations

import json
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

PACKAGES = ["aape-lightning", "torch", "torchvision", "lightning", "torchmetrics", "clip-anytorch", "jsonargparse"]


def environment() -> dict:
    """Package versions, Python, platform and devices."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cuda": torch.version.cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or ["cpu"],
    }


class RunRecord(Callback):
    """On rank 0 only: ``environment.json``, the backbone's identity and ``few_shot_split.json``."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective (broadcast): every rank must ask, in the same order
        if not trainer.is_global_zero or log_dir is None:
            return
        out = Path(log_dir)
        out.mkdir(parents=True, exist_ok=True)
        stage = getattr(stage, "value", stage)
        record = {"stage": stage, "precision": str(trainer.precision), "world_size": trainer.world_size}
        record.update(environment())
        spec = getattr(getattr(pl_module, "backbone", None), "spec", None)
        if spec is not None:
            record["backbone"] = {"name": spec.name, "path": spec.path, "sha256": spec.sha256}
        lm = getattr(getattr(pl_module, "lm", None), "spec", None)  # captioning and VQA: the frozen LM
        if lm is not None:
            record["lm"] = {"name": lm.name, "sha256": lm.sha256}
        (out / f"environment_{stage}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        sample = getattr(trainer.datamodule, "few_shot_record", None)
        if sample is not None and Path(sample).is_file():
            shutil.copyfile(sample, out / "few_shot_split.json")
