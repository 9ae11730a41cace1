"""A training DataLoader that an interrupted run resumes mid-epoch exactly where it stopped.

Lightning restores weights, optimiser and loop counters, but not the random-number state nor
the place in the epoch: a plain loader restarts the epoch with a new shuffle. This loader
implements Lightning's ``state_dict`` / ``load_state_dict`` loader interface: the checkpoint
keeps the random state drawn at the start of the epoch (which decides the shuffle and the
workers' seeds), how many batches were taken, and the random state at saving time. On resume
the epoch is replayed from its start state, the batches already trained on are drawn and
dropped, and the saved state is put back, so the run continues bit for bit as if never stopped
(with ``num_workers`` 0, or without random augmentation: persistent workers keep random state
that no checkpoint holds).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (where present) CUDA random states."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],  # plain types: weights_only loads
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableDataLoader(DataLoader):
    """A DataLoader whose place in the epoch and random state are saved in Lightning checkpoints."""

    _epoch_rng: dict[str, Any] | None = None
    _taken = 0
    _resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator:
        return self._batches()

    def _batches(self) -> Iterator:
        # runs at the first next(): the state here is what decides this epoch's shuffle and worker seeds
        resume, self._resume = self._resume, None
        if resume is not None:
            set_rng_state(resume["epoch_rng"])
        self._epoch_rng, self._taken = rng_state(), 0
        batches = super().__iter__()
        if resume is not None and resume["taken"]:
            for _ in range(resume["taken"]):  # trained on before the interruption: draw and drop
                next(batches)
                self._taken += 1
            set_rng_state(resume["rng"])
        for batch in batches:
            self._taken += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_rng": self._epoch_rng, "taken": self._taken, "rng": rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("epoch_rng") is None:
            return
        if state.get("taken", 0) >= len(self):  # saved at an epoch's end: the next epoch starts from the saved state
            state = {"epoch_rng": state["rng"], "taken": 0, "rng": state["rng"]}
        self._resume = state
