"""A checkpoint of another task or data kind is refused in one line naming both, before anything is built (issue 23)."""

from __future__ import annotations

import pytest
import torch
import yaml

from aape_lightning.cli import main
from cli_helpers import write_config


def fake_checkpoint(path, task: str, data: str, **hparams):
    """What ``aape fit`` of that task saves about itself (its weights do not matter: it is refused first)."""
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": task, "backbone": "demo", **hparams},
                "aape_data": {"class_path": data, "init_args": {}}}, path)
    return path


@pytest.mark.parametrize("sub", ["test", "predict"])
def test_a_captioning_checkpoint_with_a_classification_config_is_refused(tmp_path, tiny_clip, tiny_dataset, cache_dir,
                                                                         capsys, sub):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    ckpt = fake_checkpoint(tmp_path / "cap.ckpt", "aape_lightning.tasks.CaptioningTask",
                           "aape_lightning.data.CaptionDataModule")
    assert main([sub, "--config", str(cfg), "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("aape: error: ")]
    assert f"checkpoint {ckpt} is a CaptioningTask trained on CaptionDataModule data" in line
    assert "the config asks for ClassificationDataModule data" in line and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_checkpoint_of_another_task_than_the_config_names_is_refused(tmp_path, tiny_clip, tiny_dataset, cache_dir,
                                                                       capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    ckpt = fake_checkpoint(tmp_path / "vqa.ckpt", "aape_lightning.tasks.VQATask", "aape_lightning.data.VQADataModule")
    assert main(["test", "--config", str(cfg), "--model", "RetrievalTask", "--ckpt_path", str(ckpt)]) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("aape: error: ")]
    assert "is a VQATask trained on VQADataModule data, but the config asks for a RetrievalTask" in line


def test_a_checkpoint_of_another_head_than_the_config_names_is_refused(tmp_path, tiny_clip, tiny_dataset, cache_dir,
                                                                       capsys):
    config = yaml.safe_load(write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs").read_text())
    config["model"]["init_args"]["head"] = {"class_path": "CoOpHead"}
    cfg = tmp_path / "coop.yaml"
    cfg.write_text(yaml.safe_dump(config))
    ckpt = fake_checkpoint(tmp_path / "aape.ckpt", "aape_lightning.tasks.ClassificationTask",
                           "aape_lightning.data.ClassificationDataModule",
                           head={"class_path": "aape_lightning.heads.AAPEHead", "init_args": {}})
    assert main(["test", "--config", str(cfg), "--ckpt_path", str(ckpt)]) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("aape: error: ")]
    assert "was trained with head AAPEHead, but the config asks for CoOpHead; drop model.head" in line
