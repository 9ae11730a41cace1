"""A test-only callback (``class_path: slow_steps.SlowSteps``): each training step sleeps while
``AAPE_TEST_SLOW`` is set, so a test can interrupt a run mid-fit; without it, it does nothing
(and the run's arguments, hence its key, do not change)."""

from __future__ import annotations

import os
import time

from lightning.pytorch.callbacks import Callback


class SlowSteps(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        time.sleep(float(os.environ.get("AAPE_TEST_SLOW", "0")))
