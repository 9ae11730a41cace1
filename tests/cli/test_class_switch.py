"""A config that switches ``data``/``model`` away from the default classes gets the new classes' own defaults.

jsonargparse keeps the default class's init_args that the new class also accepts; before the fix a
VQA config without ``shots`` trained on ClassificationDataModule's 16 questions, augmented.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from aape_lightning.cli import main
from aape_lightning.data import CaptionDataModule, VQADataModule
from aape_lightning.tasks import VQATask


def _defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}


@pytest.mark.parametrize(("data", "reader"), [(VQADataModule, "DemoVQAReader"), (CaptionDataModule, "DemoCaptionReader")])
def test_switched_data_class_gets_its_own_defaults(data, reader, tmp_path, capsys) -> None:
    config = tmp_path / "switch.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"class_path": "VQATask", "init_args": {"backbone": "demo"}},
        "data": {"class_path": data.__name__, "init_args": {"reader": {"class_path": reader, "init_args": {"root": "x"}}}},
    }))  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), "--data.batch_size", "7", "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    got = printed["data"]["init_args"]
    own = _defaults(data)
    assert got["augment"] is own["augment"] is False  # ClassificationDataModule's is True
    assert got.get("shots", None) == own.get("shots", None)  # VQA: None (every question), not 16
    assert got["batch_size"] == 7  # what was given still applies
    model = printed["model"]["init_args"]
    assert model["optim"] == dataclasses.asdict(_defaults(VQATask)["optim"])


def test_command_line_class_switch_keeps_given_values(tmp_path, capsys) -> None:
    """``--data VQADataModule`` on the command line: values given after it apply, the rest are VQA's own."""
    with pytest.raises(SystemExit):
        main(["fit", "--model", "VQATask", "--data", "VQADataModule", "--data.shots", "3", "--print_config"])
    got = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    assert (got["shots"], got["augment"]) == (3, False)
