"""A test-only callback for the CLI (``class_path: kill_at_step.KillAtStep``): dies as under ``kill -9``."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """SIGKILLs its own process before training step ``step + 1``, mid-epoch.

    The checkpoint of step ``step`` is on disk by then (ModelCheckpoint saves at the end of a
    batch); the process gets no teardown and writes nothing more, as under an external ``kill -9``.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
