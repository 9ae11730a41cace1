"""The optimiser and learning-rate schedule, one block every task takes (``model.init_args.optim``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat

OPTIMIZERS = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@dataclass(frozen=True)
class OptimSchedule:
    """How the trainable parameters are optimised; the defaults are AdamW's own (torch's lr and weight decay).

    Args:
        optimizer: "adamw" or "sgd" (the paper's recipe, CoOp's: SGD with momentum).
        lr: the base learning rate.
        weight_decay: L2 weight decay (decoupled for AdamW).
        momentum: SGD's momentum (CoOp: 0.9); AdamW ignores it.
        schedule: "cosine" decay to 0 over the run, or "constant".
        warmup_epochs: epochs at ``warmup_lr`` before the schedule starts (CoOp: 1 at 1e-5).
        warmup_lr: the constant learning rate during warm-up.
    """

    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.01
    momentum: ClosedUnitInterval = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: NonNegativeInt = 0
    warmup_lr: NonNegativeFloat = 1e-5

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optim.optimizer {self.optimizer!r} is not one of {', '.join(map(repr, OPTIMIZERS))}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"optim.schedule {self.schedule!r} is not one of 'cosine', 'constant'")
        # plain numbers: the parsed bounded types would make checkpoints unreadable by torch.load(weights_only=True)
        for name in ("lr", "weight_decay", "momentum", "warmup_lr"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "warmup_epochs", int(self.warmup_epochs))

    def build(self, params: list[torch.nn.Parameter], total_steps: int, epochs: int) -> dict:
        """The optimiser and its per-step schedule over ``total_steps`` steps in ``epochs`` epochs (Lightning's dict)."""
        if self.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = max(total_steps, 1)
        warmup = min(total - 1, self.warmup_epochs * total // max(epochs, 1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, total, warmup, self.lr, self.warmup_lr, self.schedule)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lr_factor(step: int, total: int, warmup: int, base_lr: float, warmup_lr: float, schedule: str) -> float:
    """Multiplier of ``base_lr`` at ``step``: ``warmup_lr`` for ``warmup`` steps, then cosine to 0 (or constant)."""
    if step < warmup:
        return warmup_lr / base_lr
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
