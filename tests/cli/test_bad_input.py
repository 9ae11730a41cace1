"""Bad input: one clear line (file, value, fix) on stderr and exit code 2, through ``aape``."""

from __future__ import annotations

import json
import shutil

import pytest

from aape_lightning.backbones import build_tiny_clip
from aape_lightning.cli import main
from cli_helpers import checkpoints, run_aape, write_config
from folder_snapshot import snapshot
from tiny_world import make_coop_dataset


def fit_args(cfg, *extra):
    return ["fit", "--config", str(cfg), "--trainer.max_epochs", "1", *extra]


def test_missing_data_root(tmp_path, tiny_clip, cache_dir, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tmp_path / "no_such_dataset", tmp_path / "runs")
    assert main(fit_args(cfg)) == 2
    err = capsys.readouterr().err
    assert "no_such_dataset does not exist" in err and "root" in err


def test_missing_split_file(tmp_path, tiny_clip, tiny_dataset, cache_dir, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    assert main(fit_args(cfg, "--data.reader.split_file", "split_zhou_Nope.json")) == 2
    assert "split_zhou_Nope.json does not exist" in capsys.readouterr().err


def test_unknown_backbone(tmp_path, tiny_dataset, cache_dir, capsys):
    cfg = write_config(tmp_path / "c.yaml", "ViT-Z/1", tiny_dataset, tmp_path / "runs")
    assert main(fit_args(cfg)) == 2
    err = capsys.readouterr().err
    assert "unknown backbone 'ViT-Z/1'" in err and "ViT-B/16" in err and "local CLIP checkpoint file" in err


@pytest.fixture()
def dataset_copy(tmp_path, tiny_dataset):
    return shutil.copytree(tiny_dataset, tmp_path / "Tiny")


def test_prompt_bank_missing_classes_then_fallback(tmp_path, tiny_clip, dataset_copy, cache_dir, capsys):
    bank = tmp_path / "partial.json"
    bank.write_text(json.dumps({"red square": ["a red square."]}))
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, dataset_copy, tmp_path / "runs")
    assert main(fit_args(cfg, "--data.prompts", str(bank))) == 2
    err = capsys.readouterr().err
    assert "partial.json" in err and "'green circle', 'blue triangle'" in err and "prompt_fallback" in err
    assert main(fit_args(cfg, "--data.prompts", str(bank), "--data.prompt_fallback", "true")) == 0


def test_empty_prompt_list(tmp_path, tiny_clip, dataset_copy, cache_dir, capsys):
    bank = tmp_path / "empty.json"
    bank.write_text(json.dumps({"red square": [], "green circle": ["x"], "blue triangle": ["y"]}))
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, dataset_copy, tmp_path / "runs")
    assert main(fit_args(cfg, "--data.prompts", str(bank))) == 2
    assert "'red square' has an empty prompt list" in capsys.readouterr().err


@pytest.fixture()
def checkpoint(tmp_path, tiny_clip, dataset_copy, cache_dir):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, dataset_copy, tmp_path / "runs")
    assert main(fit_args(cfg)) == 0
    (ckpt,) = checkpoints(tmp_path / "runs")
    return cfg, ckpt


def test_checkpoint_with_other_classes(tmp_path, tiny_clip, checkpoint, capsys):
    cfg, ckpt = checkpoint
    other = make_coop_dataset(tmp_path / "Other", classes=["red circle", "green square", "blue square", "purple square"])
    other_cfg = write_config(tmp_path / "o.yaml", tiny_clip, other, tmp_path / "runs2")
    assert main(["test", "--config", str(other_cfg), "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "class set 'base' of the data differs from the model" in err and "red circle" in err


def test_checkpoint_with_other_backbone_name(tmp_path, checkpoint, capsys):
    cfg, ckpt = checkpoint
    other_clip = build_tiny_clip(tmp_path / "other.pt", seed=7)
    assert main(["test", "--config", str(cfg), "--ckpt_path", str(ckpt), "--model.backbone", str(other_clip)]) == 2
    err = capsys.readouterr().err
    assert "was trained on backbone" in err and "other.pt" in err and "drop model.backbone" in err


def test_checkpoint_whose_backbone_file_changed(tmp_path, checkpoint, capsys):
    """Same path, other weights: caught by the content hash stored in the checkpoint."""
    cfg, ckpt = checkpoint
    import yaml

    config = yaml.safe_load(cfg.read_text())
    swapped = build_tiny_clip(tmp_path / "swapped.pt", seed=0)
    config["model"]["init_args"]["backbone"] = str(swapped)
    cfg2 = tmp_path / "c2.yaml"
    cfg2.write_text(yaml.safe_dump(config))
    assert main(fit_args(cfg2, "--trainer.default_root_dir", str(tmp_path / "runs_s"))) == 0
    (ckpt2,) = checkpoints(tmp_path / "runs_s")
    build_tiny_clip(swapped, seed=99)  # the file at that path now holds other weights
    assert main(["test", "--config", str(cfg2), "--ckpt_path", str(ckpt2)]) == 2
    err = capsys.readouterr().err
    assert "trained on backbone" in err and "sha256" in err and "set model.backbone" in err


@pytest.mark.slow
def test_exit_code_in_a_real_process(tmp_path, tiny_dataset):
    cfg = write_config(tmp_path / "c.yaml", "ViT-Z/1", tiny_dataset, tmp_path / "runs")
    out = run_aape(fit_args(cfg), tmp_path / "cache")
    assert out.returncode == 2 and "aape: error: unknown backbone" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_head_lists_known_classes(tmp_path, tiny_clip, tiny_dataset, cache_dir, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args(cfg, "--model.head", "CoOOpHead"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown class CoOOpHead" in err and "CoOpHead" in err and "AAPEHead" in err and "usage:" not in err


def error_line(err: str) -> str:
    """The one ``aape: error:`` line (log lines may share stderr)."""
    (line,) = [ln for ln in err.splitlines() if ln.startswith("aape: error: ")]
    return line


def test_new_class_name_too_long_for_the_context_stops_fit_before_training(tmp_path, tiny_clip, cache_dir, capsys):
    """It used to train on base and fail with a traceback only at `aape test`, when the new classes were encoded."""
    data = make_coop_dataset(tmp_path / "Long")  # 6 classes: labels 3-5 are the new ones
    long_name = "so " * 30 + "orange triangle"
    split = json.loads((data / "split_zhou_Tiny.json").read_text())
    for part in split.values():
        for row in part:
            row[2] = long_name if row[1] == 5 else row[2]
    (data / "split_zhou_Tiny.json").write_text(json.dumps(split))
    before = snapshot(data)
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, data, tmp_path / "runs")
    assert main(fit_args(cfg, "--data.split_cache_dir", str(tmp_path / "splits"))) == 2
    line = error_line(capsys.readouterr().err)
    assert f"class name {long_name!r} of class set 'new' takes 39 tokens" in line
    assert "text context of 32" in line and "shorten that class name in the dataset" in line
    assert not checkpoints(tmp_path / "runs")  # stopped before training
    assert snapshot(data) == before


def test_demo_data_under_a_file(tmp_path, capsys):
    file = tmp_path / "demo"
    file.write_text("mine")
    assert main(["demo", "build-data", "--root", str(file)]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"demo root {file}: {file} is a file, not a folder; pass a folder" in line and "--root" in line
    assert file.read_text() == "mine"
