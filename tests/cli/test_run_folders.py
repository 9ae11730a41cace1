"""Where a run writes: refused paths are one line, version folders are claimed atomically, reruns are never refused (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from aape_lightning.cli import main
from aape_lightning.lightning_cli.run_folders import claim_version
from cli_helpers import checkpoints, write_config


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("aape: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def one_step(cfg: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(cfg), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
            "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0", *extra]


@pytest.fixture()
def config(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    return write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, which refuses new folders even to root")
def test_a_run_folder_the_system_refuses_is_one_line_naming_it(config, capsys):
    assert main(one_step(config, "--trainer.default_root_dir", "/sys/aape_run")) == 2
    line = error_line(capsys.readouterr().err)
    assert "/sys/aape_run" in line and ("Operation not permitted" in line or "no write permission" in line)


def test_a_cache_folder_under_a_file_is_one_line_naming_it(config, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    monkeypatch.setenv("AAPE_CACHE_DIR", str(blocker / "cache"))
    assert main(one_step(config)) == 2
    line = error_line(capsys.readouterr().err)
    assert str(blocker) in line and "Not a directory (ENOTDIR)" in line
    assert blocker.read_text() == "mine" and not checkpoints(tmp_path / "runs")


@pytest.mark.parametrize("logger_class", [TensorBoardLogger, CSVLogger])
def test_runs_started_together_claim_distinct_version_folders(tmp_path, monkeypatch, logger_class):
    """Both list the folder before either creates its version: the second mkdir fails and takes the next."""
    first, second = logger_class(tmp_path), logger_class(tmp_path)
    monkeypatch.setattr(logger_class, "_get_next_version", lambda self: 0)  # what each saw when both listed
    claim_version(first)
    claim_version(second)
    assert (first.version, second.version) == (0, 1)
    assert sorted(p.name for p in Path(first.root_dir).iterdir()) == ["version_0", "version_1"]
    given = logger_class(tmp_path, version=7)
    claim_version(given)  # a version the user chose is theirs
    assert given.version == 7 and not (Path(given.root_dir) / "version_7").exists()


def test_a_rerun_without_logger_keeps_the_config_an_earlier_run_left(config, tmp_path, capsys, caplog):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "config.yaml").write_text("# left by a run that failed early\n")
    assert main(one_step(config, "--trainer.logger", "false")) == 0
    kept = [p for p in root.glob("config.*.yaml")]
    assert len(kept) == 1 and kept[0].read_text() == "# left by a run that failed early\n"
    assert "trainer:" in (root / "config.yaml").read_text()  # this run's own
    assert f"kept as {kept[0].name}" in caplog.text
    assert torch.load(checkpoints(root)[0], weights_only=True)["state_dict"]  # plain numbers in its hyperparameters
    assert main(one_step(config, "--trainer.logger", "false")) == 0  # and again
    assert len(list(root.glob("config.*.yaml"))) == 2


def test_a_refused_path_is_a_user_error_unless_a_bug_was_raised_handling_it():
    from aape_lightning.errors import user_error

    def raised(wrap=None, chained=True):
        try:
            try:
                raise PermissionError(1, "Operation not permitted", "/sys/x")
            except OSError as err:
                if wrap is None:
                    raise
                if chained:
                    raise wrap from err
                raise wrap  # noqa: B904 - a new error while handling the OSError
        except Exception as err:  # noqa: BLE001
            return user_error(err)

    assert str(raised()).startswith("cannot use /sys/x: Operation not permitted (EPERM)")
    assert str(raised(RuntimeError("wrapped"))).startswith("cannot use /sys/x")  # raise ... from the OSError
    assert raised(KeyError("a bug"), chained=False) is None  # a traceback, not a misleading line
