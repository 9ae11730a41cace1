"""The probe's pieces: the shuffle pairing, the halves, and refusals of checkpoints it cannot probe."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.demo.datasets import DEMO_DATASETS
from aape_lightning.demo.probe import DemoTestSet, dataset_of, descriptions, other_class_partner
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
