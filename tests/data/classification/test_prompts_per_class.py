"""``data.prompts_per_class``: the scaling study's prompt budget, a seeded subset of each class's prompts."""

from __future__ import annotations

import pytest

from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
from aape_lightning.errors import DataError


def prompts(root, per_class, seed=1):
    dm = ClassificationDataModule(CoOpSplitReader(root=str(root)), shots=2, seed=seed, num_workers=0,
                                  prompts_per_class=per_class)  # fmt: skip
    dm.setup("fit")
    return dm.prompts_for("base")


def test_prompts_per_class_keeps_a_seeded_subset_in_order(tiny_dataset, tmp_path):
    every = prompts(tiny_dataset, None)
    assert all(len(p) == 3 for p in every)
    two = prompts(tiny_dataset, 2)
    assert all(len(p) == 2 and [s for s in full if s in p] == p for p, full in zip(two, every))
    assert two == prompts(tiny_dataset, 2)  # same seed, same prompts
    assert prompts(tiny_dataset, 9) == every  # a budget above the bank keeps it whole


def test_a_zero_budget_is_refused():
    with pytest.raises(DataError, match="prompts_per_class=0"):
        ClassificationDataModule(prompts_per_class=0)
