"""A trained task back from its checkpoint alone, outside the CLI (for probes and analyses)."""

from __future__ import annotations

from pathlib import Path

import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningModule

from aape_lightning.errors import CheckpointMismatchError


def load_task(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> LightningModule:
    """Rebuild the task an ``aape fit`` checkpoint was written by, with its trained weights, in eval mode.

    The checkpoint's hyperparameters say which task, head and backbone (by class path, as the CLI
    saved them); the backbone is loaded by name and checked against the recorded hash.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointMismatchError(f"checkpoint {path} does not exist; pass a .ckpt file written by `aape fit`")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    hparams = checkpoint.get("hyper_parameters") or {}
    if "_class_path" not in hparams:
        raise CheckpointMismatchError(
            f"checkpoint {path} has no task class in its hyperparameters; pass one written by `aape fit`"
        )
    init_args = {k: v for k, v in hparams.items() if not k.startswith("_")}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model")
    config = parser.parse_object({"model": {"class_path": hparams["_class_path"], "init_args": init_args}})
    task = parser.instantiate_classes(config).model
    task.on_load_checkpoint(checkpoint)
    task.load_state_dict(checkpoint["state_dict"])
    return task.eval()
