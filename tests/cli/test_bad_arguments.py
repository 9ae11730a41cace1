"""Numbers out of bounds, YAML that is not a config, nested typos: one line naming the file or key, exit 2 (issue 23)."""

from __future__ import annotations

import dataclasses
import typing
from importlib import import_module

import pytest
from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
)

from aape_lightning.cli import main
from aape_lightning.lightning_cli.plugins import PLUGIN_PACKAGES, load_plugins
from cli_helpers import write_config

BOUNDED = (PositiveInt, NonNegativeInt, PositiveFloat, NonNegativeFloat, ClosedUnitInterval, OpenUnitInterval)


def cli_classes() -> list[type]:
    """Every class YAML can name: tasks, data modules, readers, heads, core parts, callbacks, and the dataclasses they take."""
    import torch.nn as nn
    from lightning.pytorch import Callback, LightningDataModule, LightningModule

    from aape_lightning.data import DatasetReader

    load_plugins()
    roots = (LightningModule, LightningDataModule, DatasetReader, nn.Module, Callback)
    found = []
    for package in PLUGIN_PACKAGES:
        module = import_module(package)
        found += [c for c in (getattr(module, n) for n in module.__all__) if isinstance(c, type) and issubclass(c, roots)]
    for cls in list(found):  # dataclasses taken as init arguments (ContextOptions)
        for hint in typing.get_type_hints(cls.__init__).values():
            found += [a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a) and a not in found]
    return found


def unbounded_numbers(cls: type) -> list[str]:
    """``Class.arg: int`` for each int / float init argument (alone, optional or in a list) without bounds."""
    missing = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not klass.__module__.startswith("aape_lightning"):
            continue
        for name, hint in typing.get_type_hints(init).items():
            parts = [hint, *typing.get_args(hint)]
            if any(p in (int, float) for p in parts) and not any(p in BOUNDED for p in parts):
                missing.append(f"{klass.__name__}.{name}: {hint}")
    return missing


def test_every_number_the_cli_exposes_has_bounds():
    classes = cli_classes()
    assert len(classes) > 25 and any(c.__name__ == "ContextOptions" for c in classes)
    missing = sorted({m for cls in classes for m in unbounded_numbers(cls)})
    assert not missing, "give these a bounded type (jsonargparse.typing): " + ", ".join(missing)


def test_the_walk_finds_an_unbounded_number():
    class Probe:
        def __init__(self, a: PositiveInt = 1, b: float | None = None, c: list[int] = [1]) -> None:  # noqa: B006
            pass

    Probe.__module__ = "aape_lightning.probe"
    assert unbounded_numbers(Probe) == ["Probe.b: float | None", "Probe.c: list[int]"]


def refusal(capsys, args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("aape: error: ")]
    assert len(lines) == 1 and "Traceback" not in err and "Union" not in err, err
    return lines[0]


@pytest.fixture()
def config(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    return write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")


@pytest.mark.parametrize("option, value, expected", [
    ("data.batch_size", "0", "command line: data.batch_size=0 (ClassificationDataModule) must be an integer >= 1"),
    ("data.shots", "-1", "data.shots=-1 (ClassificationDataModule) must be an integer >= 0"),
    ("data.val_shots", "-2", "data.val_shots=-2 (ClassificationDataModule) must be an integer >= 1 or null"),
    ("data.num_workers", "two", "data.num_workers='two' (ClassificationDataModule) must be an integer >= 0"),
    ("model.core.generator.dropout", "1.5", "model.core.generator.dropout=1.5 (Generator) must be a number from 0 to 1"),
    ("model.optim.warmup_lr", "-1e-5", "model.optim.warmup_lr=-1e-5 (ClassificationTask) must be a number >= 0"),
])
def test_a_number_out_of_bounds_is_one_line_naming_key_value_and_range(config, capsys, option, value, expected):
    assert expected in refusal(capsys, ["fit", "--config", str(config), f"--{option}={value}"])


def test_a_number_out_of_bounds_in_a_config_names_that_file(config, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  init_args:\n    eval_batch_size: 0\n")
    line = refusal(capsys, ["fit", "--config", str(config), "--config", str(bad)])
    assert f"{bad}: data.eval_batch_size=0" in line and "must be an integer >= 1" in line


def test_unknown_key_under_a_nested_class_names_that_class(config, tmp_path, capsys):
    line = refusal(capsys, ["fit", "--config", str(config), "--model.head.hiden", "8"])
    assert "'hiden' is not an option of AAPEHead; did you mean 'hidden'?" in line
    nested = tmp_path / "nested.yaml"
    nested.write_text("model:\n  init_args:\n    head:\n      class_path: AAPEHead\n      init_args:\n        n_tokenz: 2\n")
    line = refusal(capsys, ["fit", "--config", str(config), "--config", str(nested)])
    assert line.startswith(f"aape: error: {nested}: 'n_tokenz' is not an option of AAPEHead; did you mean 'n_tokens'?")


def test_unknown_key_of_the_trainer_names_the_file_and_the_closest_key(config, tmp_path, capsys):
    """Not under a class_path: the top parser's own keys are the candidates (no nested parser failed)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochz: 1\n")
    line = refusal(capsys, ["fit", "--config", str(config), "--config", str(bad)])
    assert line == f"aape: error: {bad}: option 'trainer.max_epochz' does not exist; did you mean 'trainer.max_epochs'?"


@pytest.mark.parametrize("text, expected", [
    ("trainer:\n  max_epochs: 1\n\tlimit_train_batches: 2\n", ", line 3, column 1: a tab: YAML indents with spaces"),
    ("- trainer\n- model\n", ": a config is a mapping of options (trainer:, model:, data: ...), this file holds a list"),
    ("model: {class_path: X\n", ", line 2, column 1: expected ',' or '}'"),
])
def test_a_config_that_is_not_yaml_of_options_names_file_line_and_what_was_expected(config, tmp_path, capsys, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["fit", "--config", str(config), "--config", str(bad)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("aape: error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"aape: error: {bad}{expected}"), lines


def returned_refusal(capsys, args) -> str:
    """The one error line of a refusal ``main`` returns 2 for (raised before LightningCLI parses)."""
    assert main(args) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("aape: error: ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("option, expected", [
    ("--model.head.core.distill_weight=3", "command line: '--model.head.core.distill_weight' moved: use model.core.distill_weight instead"),
    ("--model.init_args.head.init_args.core.init_args.distill_weight=3",
     "'--model.init_args.head.init_args.core.init_args.distill_weight' moved: use model.core.distill_weight instead"),
    ("--model.optimizer=SGD", "'--model.optimizer' moved: use model.optim.optimizer instead"),
    ("--model.optimizer.init_args.lr=0.1", "'--model.optimizer.init_args.lr' moved: use model.optim.lr instead"),
    ("--model.optimizer.nesterov=true", "moved: use model.optim (optimizer: adamw or sgd, lr, weight_decay, momentum) instead"),
    ("--model.schedule=constant", "'--model.schedule' moved: use model.optim.schedule instead"),
    ("--model.warmup_epochs=1", "'--model.warmup_epochs' moved: use model.optim.warmup_epochs instead"),
])
def test_a_moved_key_on_the_command_line_is_one_line_naming_its_new_place(config, capsys, option, expected):
    assert expected in returned_refusal(capsys, ["fit", "--config", str(config), option])


def test_a_moved_key_in_a_config_names_that_file_and_the_new_place(config, tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  init_args:\n    head:\n      class_path: AAPEHead\n      init_args:\n"
                   "        core:\n          init_args:\n            distill_weight: 3\n")
    line = returned_refusal(capsys, ["fit", "--config", str(config), "--config", str(old)])
    assert line == f"aape: error: {old}: 'model.init_args.head.init_args.core' moved: use model.core instead (one key for every task)"
    dotted = tmp_path / "dotted.yaml"
    dotted.write_text("model:\n  warmup_lr: 0.001\n")
    assert f"{dotted}: 'model.warmup_lr' moved: use model.optim.warmup_lr instead" in returned_refusal(
        capsys, ["fit", "--config", str(config), "--config", str(dotted)])


def test_the_new_keys_and_lookalikes_pass_the_moved_check():
    from aape_lightning.lightning_cli.moved_keys import check_moved_keys

    check_moved_keys(["fit", "--model.core.distill_weight=3", "--model.optim.optimizer=sgd", "--model.head.hidden=8",
                      "--model.optimizers_note=x", "--data.schedule=1"])  # none moved: no error
