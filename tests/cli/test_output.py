"""What ``aape`` prints is for a person: Lightning's non-actionable warnings are silenced, ``--help`` lists every command."""

from __future__ import annotations

import warnings

import pytest

from aape_lightning.cli import EXTRA_COMMANDS, LIGHTNING_COMMANDS, main
from aape_lightning.console import configure_output

SILENCED = [  # Lightning's texts, as it formats them
    "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and treespec.is_leaf()` instead.",
    "Found 29 module(s) in eval mode at the start of training. This may lead to unexpected behavior during training.",
    "The number of training batches (3) is smaller than the logging interval Trainer(log_every_n_steps=50). Set a lower"
    " value for log_every_n_steps if you want to see logs for the training epoch.",
    "The dirpath has changed from '/a/checkpoints' to '/b/checkpoints', therefore `best_model_score`, `kth_best_model_path`,"
    " `kth_value`, `last_model_path` and `best_k_models` won't be reloaded. Only `best_model_path` will be reloaded.",
    "Total length of `list` across ranks is zero. Please make sure this was your intention.",
]


@pytest.fixture()
def quiet():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_output()
        yield caught


@pytest.mark.parametrize("message", SILENCED)
def test_non_actionable_lightning_warnings_are_silenced(quiet, message):
    warnings.warn(message, UserWarning, stacklevel=1)
    assert not quiet


def test_actionable_warnings_stay(quiet):
    warnings.warn("Checkpoint directory /x/checkpoints exists and is not empty.", UserWarning, stacklevel=1)
    warnings.warn("The 'train_dataloader' does not have many workers which may be a bottleneck.", UserWarning, stacklevel=1)
    assert len(quiet) == 2


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert set(EXTRA_COMMANDS) | set(LIGHTNING_COMMANDS) <= listed, listed


def test_results_are_printed_once_rounded_with_a_column_per_dataloader_only_where_they_differ(capsys):
    from types import SimpleNamespace

    import torch

    from aape_lightning.lightning_cli.aape_cli import AAPECLI

    cli = SimpleNamespace(trainer=SimpleNamespace(is_global_zero=True, callback_metrics={
        "test/acc": torch.tensor(81.234567), "val_loss/dataloader_idx_0": torch.tensor(0.5),
        "val_loss/dataloader_idx_1": torch.tensor(0.75), "test/H/dataloader_idx_0": torch.tensor(1 / 3),
        "test/H/dataloader_idx_1": torch.tensor(1 / 3)}))
    AAPECLI._print_metrics(cli, "test")
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split() for ln in lines] == [["test/H", "0.3333"], ["test/acc", "81.23"],
                                            ["test/val_loss", "[0]", "0.5", "[1]", "0.75"]]
