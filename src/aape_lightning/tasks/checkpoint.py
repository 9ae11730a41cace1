"""Checkpoints from the user: found (``last``), read with a one-line error, and turned back into a task."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningModule

from aape_lightning.errors import CheckpointMismatchError, CheckpointNotFoundError, CheckpointUnreadableError


def find_last_checkpoint(root: str | Path) -> Path:
    """The newest ``.ckpt`` of the newest run under ``root`` (``last.ckpt`` first), for ``--ckpt_path last``.

    Each ``aape fit`` logs into a new ``version_N`` folder, so Lightning's own ``last`` (which
    looks only in the new run's folder) never finds the interrupted run's checkpoint.
    """
    root = Path(root).expanduser()
    found = sorted(root.rglob("*.ckpt"), key=lambda p: (p.stat().st_mtime_ns, p.name.startswith("last")))
    if not found:
        raise CheckpointNotFoundError(
            f"--ckpt_path last: no checkpoint under {root.resolve()}; give the run's root as "
            f"--trainer.default_root_dir (as in the interrupted run) or the .ckpt file as --ckpt_path"
        )
    newest_run = found[-1].parent
    in_run = [p for p in found if p.parent == newest_run]
    last = [p for p in in_run if re.fullmatch(r"last(-v\d+)?\.ckpt", p.name)]
    return (last or in_run)[-1]


def read_checkpoint(path: str | Path, weights_only: bool = False) -> dict[str, Any]:
    """The checkpoint's contents, or a one-line error saying it is missing or not a readable checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        hint = "" if path.suffix == ".ckpt" else " (or `last` for the newest checkpoint under --trainer.default_root_dir)"
        raise CheckpointNotFoundError(
            f"checkpoint {path} not found; pass a .ckpt file written by `aape fit`{hint}"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointUnreadableError(
            f"checkpoint {path} cannot be read ({reason}); it is truncated or not a checkpoint: "
            f"pass a complete .ckpt written by `aape fit`"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointUnreadableError(f"{path} is not a Lightning checkpoint (no state_dict); pass one written by `aape fit`")
    return checkpoint


def load_task(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> LightningModule:
    """Rebuild the task an ``aape fit`` checkpoint was written by, with its trained weights, in eval mode.

    The checkpoint's hyperparameters say which task, head and backbone (by class path, as the CLI
    saved them); the backbone is loaded by name and checked against the recorded hash.
    """
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
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
