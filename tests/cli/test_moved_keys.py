"""A checkpoint saved before the model keys moved (issue 26) tests as it did: its settings are read in the new layout.

Before the move ``ClassificationTask`` held the AAPE core under its head (``head.init_args.core``) and the
optimiser as a torch class with its arguments beside ``schedule`` / ``warmup_*``; the layouts below are
those that ``aape fit`` saved then (read from a checkpoint of the code before the move).
"""

from __future__ import annotations

import logging
from importlib import import_module

import pytest
import torch
import yaml

from aape_lightning.cli import main
from aape_lightning.lightning_cli.moved_keys import MOVED_CLASSES, upgrade_class_paths, upgrade_hparams
from cli_helpers import checkpoints, parse_test_line, write_config

CORE = {"class_path": "aape_lightning.core.AAPECore",
        "init_args": {"distill_weight": 3.0,
                      "generator": {"class_path": "aape_lightning.core.Generator", "init_args": {"hidden": 16}}}}
# what jsonargparse saved for ``optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.002, ...}}``: every argument
SGD = {"class_path": "torch.optim.SGD",
       "init_args": {"dampening": 0.0, "differentiable": False, "foreach": None, "fused": None, "lr": 0.002,
                     "maximize": False, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0005}}


def old_layout(backbone: str = "demo", optimizer: dict = SGD) -> dict:
    return {"_class_path": "aape_lightning.tasks.ClassificationTask", "backbone": backbone, "template": None,
            "head": {"class_path": "aape_lightning.heads.AAPEHead",
                     "init_args": {"fusion": "concat", "hidden": 32, "core": CORE}},
            "optimizer": optimizer, "schedule": "constant", "warmup_epochs": 1, "warmup_lr": 1e-05}


def test_an_old_layout_is_rewritten_to_the_new_keys():
    new, found, dropped = upgrade_hparams(old_layout())
    assert new == {"_class_path": "aape_lightning.tasks.ClassificationTask", "backbone": "demo", "template": None,
                   "head": {"class_path": "aape_lightning.heads.AAPEHead", "init_args": {"fusion": "concat", "hidden": 32}},
                   "core": CORE,
                   "optim": {"optimizer": "sgd", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0005,
                             "schedule": "constant", "warmup_epochs": 1, "warmup_lr": 1e-05}}
    assert found == ["model.head.core", "model.optimizer", "model.schedule", "model.warmup_epochs", "model.warmup_lr"]
    assert dropped == []


def test_adamw_with_torchs_defaults_leaves_nothing_out():
    adamw = {"class_path": "torch.optim.AdamW",
             "init_args": {"amsgrad": False, "betas": [0.9, 0.999], "capturable": False, "differentiable": False,
                           "eps": 1e-08, "foreach": None, "fused": None, "lr": 0.001, "maximize": False,
                           "weight_decay": 0.01}}
    new, _, dropped = upgrade_hparams(old_layout(optimizer=adamw))
    assert new["optim"] == {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.01, "schedule": "constant",
                            "warmup_epochs": 1, "warmup_lr": 1e-05}
    assert dropped == []


def test_what_model_optim_cannot_hold_is_named():
    nesterov = {"class_path": "torch.optim.SGD", "init_args": {**SGD["init_args"], "nesterov": True}}
    assert upgrade_hparams(old_layout(optimizer=nesterov))[2] == ["SGD.nesterov=True"]
    new, _, dropped = upgrade_hparams(old_layout(optimizer={"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}}))
    assert dropped == ["optimizer torch.optim.Adam"] and new["optim"] == {
        "lr": 0.01, "schedule": "constant", "warmup_epochs": 1, "warmup_lr": 1e-05}


def test_a_new_layout_is_left_as_it_is():
    new = {"_class_path": "aape_lightning.tasks.RetrievalTask", "core": CORE, "optim": {"optimizer": "sgd"}}
    assert upgrade_hparams(new) == (new, [], [])


def _importable(path: str) -> bool:
    module, _, name = path.rpartition(".")
    try:
        return isinstance(getattr(import_module(module), name), type)
    except (ImportError, AttributeError):
        return False


def test_a_demo_reader_saved_where_it_was_is_read_where_it_is():
    """The demo readers moved into demo/ (issue 26): a checkpoint's saved data names them at the old import path."""
    assert all(not _importable(old) and _importable(new) for old, new in MOVED_CLASSES.items())
    reader = {"class_path": "aape_lightning.data.DemoCaptionReader", "init_args": {"root": "data/demo", "n_train": 12}}
    saved = {"class_path": "aape_lightning.data.CaptionDataModule", "init_args": {"reader": reader, "batch_size": 4}}
    upgraded = upgrade_class_paths(saved)
    assert upgraded == {"class_path": "aape_lightning.data.CaptionDataModule", "init_args": {
        "reader": {"class_path": "aape_lightning.demo.DemoCaptionReader", "init_args": {"root": "data/demo", "n_train": 12}},
        "batch_size": 4}}  # fmt: skip
    assert saved["init_args"]["reader"]["class_path"] == "aape_lightning.data.DemoCaptionReader"  # a copy, not changed
    assert upgrade_class_paths(None) is None


@pytest.fixture()
def trained(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    """One step of ``aape fit`` with a core and an optimiser away from their defaults (a generator of width 16)."""
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    assert main(["fit", "--config", str(cfg), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                 "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
                 "--model.core.generator.hidden", "16", "--model.core.distill_weight", "3", "--model.optim.optimizer",
                 "sgd", "--model.optim.lr", "0.002", "--model.optim.weight_decay", "0.0005",
                 "--model.optim.schedule", "constant", "--model.optim.warmup_epochs", "1"]) == 0
    (ckpt,) = checkpoints(tmp_path / "runs")
    return ckpt


def test_an_old_checkpoint_tests_as_the_same_checkpoint_in_the_new_layout(trained, tmp_path, capsys, caplog):
    state = torch.load(trained, map_location="cpu", weights_only=True)
    hparams = state["hyper_parameters"]
    optim = hparams.pop("optim")
    hparams["head"]["init_args"]["core"] = hparams.pop("core")
    hparams["optimizer"] = {"class_path": "torch.optim.SGD",
                            "init_args": {**SGD["init_args"], **{k: optim[k] for k in ("lr", "momentum", "weight_decay")}}}
    hparams.update({k: optim[k] for k in ("schedule", "warmup_epochs", "warmup_lr")})
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    hparams["optimizer"]["init_args"]["nesterov"] = True  # what model.optim cannot hold: no matter to a test
    nesterov = tmp_path / "nesterov.ckpt"
    torch.save(state, nesterov)

    capsys.readouterr()
    results, configs = {}, {}
    for name, ckpt in (("new", trained), ("old", old), ("nesterov", nesterov)):
        with caplog.at_level(logging.INFO, logger="aape_lightning.lightning_cli.aape_cli"):
            assert main(["test", "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path / name)]) == 0
        results[name] = parse_test_line(capsys.readouterr().out)
        (saved,) = (tmp_path / name).rglob("config.yaml")
        configs[name] = yaml.safe_load(saved.read_text())
    assert results["old"] == results["new"] == results["nesterov"]
    model = configs["old"]["model"]  # the settings the test run was built with
    assert model == configs["new"]["model"] == configs["nesterov"]["model"]
    assert model["init_args"]["core"]["init_args"]["generator"]["init_args"]["hidden"] == 16
    assert model["init_args"]["optim"]["optimizer"] == "sgd" and model["init_args"]["optim"]["warmup_epochs"] == 1
    moved = [r.getMessage() for r in caplog.records if "saved before its model settings moved" in r.getMessage()]
    assert moved == [f"checkpoint {ckpt} was saved before its model settings moved: read model.head.core as model.core, "
                     "model.optimizer as model.optim.optimizer, model.schedule as model.optim.schedule, "
                     "model.warmup_epochs as model.optim.warmup_epochs, model.warmup_lr as model.optim.warmup_lr"
                     for ckpt in (old, nesterov)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "model.optim" in r.getMessage()]
    assert warnings == [f"checkpoint {nesterov}: SGD.nesterov=True left out (model.optim cannot hold it; test does not train)"]


def test_resuming_an_old_checkpoint_whose_optimiser_model_optim_cannot_hold_is_refused(tmp_path, capsys):
    old = tmp_path / "old.ckpt"
    nesterov = {"class_path": "torch.optim.SGD", "init_args": {**SGD["init_args"], "nesterov": True}}
    torch.save({"state_dict": {}, "hyper_parameters": old_layout(optimizer=nesterov),
                "aape_data": {"class_path": "aape_lightning.data.ClassificationDataModule", "init_args": {}}}, old)
    assert main(["fit", "--ckpt_path", str(old), "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("aape: error: ")]
    assert line == (f"aape: error: checkpoint {old} was trained with SGD.nesterov=True, which model.optim cannot hold "
                    "(optimizer: adamw or sgd, lr, weight_decay, momentum); resume it with the aape version that "
                    "trained it, or start a new fit")
