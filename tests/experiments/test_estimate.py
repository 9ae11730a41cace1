"""The table-hours estimate counts each run's images from its stacked configs and prices them per method."""

from __future__ import annotations

from pathlib import Path

import pytest

from aape_lightning.experiments import estimate
from aape_lightning.experiments.table import TableSpec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_base2new_and_chain_runs_are_counted_from_their_configs(tmp_path):
    aape, zs = str(CONFIGS / "classification/aape.yaml"), str(CONFIGS / "classification/zero_shot.yaml")
    cost_spec = TableSpec(methods={"aape": aape, "zero_shot": zs}, datasets={"DTD": []})
    cost = {"aape": {"train": 0.5, "test": 0.01}, "zero_shot": {"train": 0.0, "test": 0.02}}
    base = [str(CONFIGS / "fewshot.yaml")]  # 16 shots, 200 epochs
    spec = TableSpec(methods={"aape_no_distill": [aape, "--model.core.distill_weight", "0.0"], "zero_shot": zs},
                     datasets={"DTD": [], "ImageNet": ["--config", str(CONFIGS / "datasets/imagenet.yaml")]},
                     base=base, seeds=[1, 2])  # fmt: skip
    got = estimate.estimate_table(spec, cost, cost_spec)
    # the AAPE ablation is priced as AAPE (same head class); DTD: 24 base classes, ImageNet: 500, 50 epochs
    train = 2 * (24 * 16 * 200 + 500 * 16 * 50)
    test = 2 * 2 * (1692 + 50000)
    assert got["runs"] == 8 and got["train images"] == train and got["test images"] == test
    assert got["seconds"] == pytest.approx(train * 0.5 + test / 2 * 0.01 + test / 2 * 0.02)
    chain = TableSpec(methods={"zero_shot": zs}, base=base, seeds=[1], layout="chain",
                      datasets={"ImageNet": ["--config", str(CONFIGS / "cross_dataset/imagenet_all_16shots.yaml")]},
                      tests={"ImageNet": [], "ImageNetA": []})  # fmt: skip
    assert estimate.estimate_table(chain, cost, cost_spec)["test images"] == 50000 + 7500
