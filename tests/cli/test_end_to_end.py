"""fit -> test -> predict through the real ``aape`` command, then DDP: each in a subprocess."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml

from cli_helpers import checkpoints, parse_test_line, run_aape, write_config
from tiny_world import make_coop_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(module_tmp, tiny_clip):
    """One single-process fit on a private copy of the tiny dataset (odd test sets, to catch DDP padding)."""
    data = make_coop_dataset(module_tmp / "Tiny", per_split=(8, 4, 5))
    cfg = write_config(module_tmp / "fit.yaml", tiny_clip, data, module_tmp / "runs")
    fit = run_aape(["fit", "--config", str(cfg)], module_tmp / "cache")
    assert fit.returncode == 0, fit.stderr[-3000:]
    (ckpt,) = checkpoints(module_tmp / "runs")
    return {"cfg": cfg, "ckpt": ckpt, "data": data, "tmp": module_tmp, "clip": tiny_clip}


def test_fit_writes_checkpoint_without_clip_weights_and_run_records(trained):
    import torch

    state = torch.load(trained["ckpt"], map_location="cpu", weights_only=False)
    assert not [k for k in state["state_dict"] if k.startswith("backbone.")]
    assert state["hyper_parameters"]["class_sets"]["base"] == ["red square", "green circle", "blue triangle"]
    assert state["aape_backbone"]["name"] == str(trained["clip"])
    run = trained["ckpt"].parent.parent
    assert (run / "config.yaml").is_file() and (run / "environment_fit.json").is_file()
    sample = yaml.safe_load((run / "few_shot_split.json").read_text())
    assert len(sample["train"]) == 6 * 4


@pytest.fixture(scope="module")
def tested(trained) -> dict[str, float]:
    """``aape test`` of the trained checkpoint with its config, single process."""
    out = run_aape(["test", "--config", str(trained["cfg"]), "--ckpt_path", str(trained["ckpt"])], trained["tmp"] / "cache")
    assert out.returncode == 0, out.stderr[-3000:]
    return parse_test_line(out.stdout)


def test_test_from_checkpoint_prints_base_new_h(tested):
    assert set(tested) == {"base", "new", "H", "base_shuffled", "new_shuffled"}  # AAPE reports the shuffle test
    assert tested["H"] == pytest.approx(2 * tested["base"] * tested["new"] / (tested["base"] + tested["new"]), abs=0.02)


def test_test_from_checkpoint_alone_reuses_training_data_settings(trained, tested):
    out = run_aape(["test", "--ckpt_path", str(trained["ckpt"]), "--trainer.default_root_dir", str(trained["tmp"] / "t")],
                   trained["tmp"] / "cache")
    assert out.returncode == 0, out.stderr[-3000:]
    assert parse_test_line(out.stdout) == tested


def test_predict_from_checkpoint_alone_without_prompt_bank(trained, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(trained["data"] / "images" / "blue_triangle", images)
    gone = tmp_path / "moved_dataset"
    shutil.move(str(trained["data"]), gone)  # no dataset, no prompts.json, no config: only the checkpoint
    try:
        out = run_aape(
            ["predict", "--ckpt_path", str(trained["ckpt"]), "--data.predict_dir", str(images),
             "--predictions.output", str(tmp_path / "pred.csv"), "--trainer.default_root_dir", str(tmp_path)],
            trained["tmp"] / "cache",
        )
    finally:
        shutil.move(str(gone), trained["data"])
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "pred.csv")))
    assert len(rows) == len(list(images.iterdir())) == 17
    known = {"red square", "green circle", "blue triangle", "yellow square", "purple circle", "orange triangle"}
    assert all(r["class"] in known and 0 < float(r["probability"]) <= 1 for r in rows)


def test_ddp_test_counts_each_sample_once(trained, tested):
    """2 gloo processes on 15 test images per set: padding would add a duplicate and shift accuracy."""
    args = ["test", "--config", str(trained["cfg"]), "--ckpt_path", str(trained["ckpt"])]
    ddp = run_aape(args + ["--trainer.strategy", "ddp", "--trainer.devices", "2"], trained["tmp"] / "cache")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert parse_test_line(ddp.stdout) == tested


def test_ddp_fit_bf16_through_the_cli(trained, tmp_path):
    cfg = write_config(tmp_path / "ddp.yaml", trained["clip"], trained["data"], tmp_path / "runs", max_epochs=1)
    out = run_aape(
        ["fit", "--config", str(cfg), "--trainer.strategy", "ddp", "--trainer.devices", "2",
         "--trainer.precision", "bf16-mixed"],
        trained["tmp"] / "cache",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(checkpoints(tmp_path / "runs")) == 1
    assert len(list((tmp_path / "runs").rglob("config.yaml"))) == 1  # rank 0 alone writes


def test_load_task_rebuilds_the_trained_model_from_its_checkpoint(trained):
    import torch

    from aape_lightning.errors import CheckpointMismatchError
    from aape_lightning.tasks.checkpoint import load_task

    task = load_task(trained["ckpt"])
    saved = torch.load(trained["ckpt"], map_location="cpu", weights_only=False)["state_dict"]
    assert not task.training and set(task.state_dict()) == set(saved)
    assert all(torch.equal(v, saved[k]) for k, v in task.state_dict().items())
    assert task.backbone.spec.name == str(trained["clip"])
    with pytest.raises(CheckpointMismatchError, match="not found"):
        load_task(trained["tmp"] / "missing.ckpt")
