"""The one optimiser-and-schedule block every task takes (tasks/optim.py)."""

from __future__ import annotations

import pickle

import pytest
import torch
from jsonargparse.typing import PositiveFloat

from aape_lightning.tasks import OptimSchedule


def test_build_makes_the_named_optimiser_with_the_given_values():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = OptimSchedule("sgd", lr=0.002, weight_decay=5e-4, momentum=0.9).build(params, total_steps=10, epochs=2)
    group = sgd["optimizer"].param_groups[0]
    assert type(sgd["optimizer"]) is torch.optim.SGD
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.002, 0.9, 5e-4)
    adamw = OptimSchedule(lr=0.01, weight_decay=1e-4).build(params, total_steps=10, epochs=2)["optimizer"]
    assert type(adamw) is torch.optim.AdamW and (adamw.param_groups[0]["lr"], adamw.param_groups[0]["weight_decay"]) == (0.01, 1e-4)


def test_warmup_epochs_become_steps_at_warmup_lr_then_cosine():
    params = [torch.nn.Parameter(torch.zeros(2))]
    out = OptimSchedule("sgd", lr=0.1, warmup_epochs=1, warmup_lr=1e-3).build(params, total_steps=8, epochs=4)
    optimizer, scheduler = out["optimizer"], out["lr_scheduler"]["scheduler"]
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[:2] == pytest.approx([1e-3, 1e-3]) and seen[2] == pytest.approx(0.1) and seen[2] > seen[5] > seen[7] > 0


def test_bad_names_are_refused_and_numbers_kept_plain():
    with pytest.raises(ValueError, match="optim.optimizer 'adam'"):
        OptimSchedule("adam")
    optim = OptimSchedule(lr=PositiveFloat(0.5))
    assert type(optim.lr) is float  # checkpoints hold it: torch.load(weights_only=True) knows no jsonargparse types
    assert b"jsonargparse" not in pickle.dumps(vars(optim))
