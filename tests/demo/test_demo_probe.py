"""The probe's pieces: the shuffle pairing, the halves, and refusals of checkpoints it cannot probe."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.demo.datasets import DEMO_DATASETS
from aape_lightning.demo.probe import DemoTestSet, dataset_of, descriptions, format_checkpoints, other_class_partner
from aape_lightning.errors import CheckpointMismatchError


@pytest.mark.parametrize("counts", [(40, 40, 40, 40, 40, 40), (3, 5, 4, 2, 6), (1, 1)])
def test_shuffle_partner_is_another_class(counts) -> None:
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])[torch.randperm(sum(counts))]
    partner = other_class_partner(labels)
    assert sorted(partner.tolist()) == list(range(len(labels)))  # a permutation: every h used once
    assert (labels[partner] != labels).all()
    assert torch.equal(partner, other_class_partner(labels))


def test_halves_follow_coop_split() -> None:
    names = [f"c{k}" for k in range(5)]
    test = DemoTestSet("X", torch.eye(5), torch.arange(5), names, "a {}.", {})
    labels, feats, targets = test.half("new")
    assert labels == [3, 4] and torch.equal(targets, torch.tensor([0, 1])) and torch.equal(feats, torch.eye(5)[3:])


def test_concept_descriptions_say_the_look_not_the_name() -> None:
    for name, shape in (("stop sign", "hexagon"), ("pine forest", "circle")):
        texts = descriptions(name)
        assert len(texts) == 8 and all(shape in t and name not in t for t in texts)


class _Task:
    hparams = {"class_sets": {"base": ["a", "b"], "new": ["c"]}}


def test_foreign_checkpoint_is_refused() -> None:
    with pytest.raises(CheckpointMismatchError, match="no demo dataset's"):
        dataset_of(_Task())
    _Task.hparams = {"class_sets": {"base": list(DEMO_DATASETS["DemoShapes"].classnames[:6]),
                                    "new": list(DEMO_DATASETS["DemoShapes"].classnames[6:])}}  # fmt: skip
    with pytest.raises(CheckpointMismatchError, match="DemoShapes.*DemoSketch"):
        dataset_of(_Task())  # the same classes: only the saved data settings can tell


def test_checkpoint_table_prints_whole_run_paths() -> None:
    """A long ``runs/...`` path is printed whole (it lost its first characters when cut to a column)."""
    run = "runs/demo/fewshot-aape-16shots-seed1-a-long-descriptive-name"
    row = {"dataset": "DemoShapes", "chance": 25.0, "new": 80.0, "new_shuffled": 30.0, "nearest_prompt": 70.0}
    table = format_checkpoints([{**row, "checkpoint": f"{run}/lightning_logs/version_0/checkpoints/last.ckpt"},
                                {**row, "checkpoint": "r/x.ckpt"}])
    lines = table.splitlines()
    assert lines[2].split()[0] == run and lines[3].split()[0] == "r/x.ckpt"
    assert lines[0].index("dataset") == lines[2].index("DemoShapes")  # the columns still line up
