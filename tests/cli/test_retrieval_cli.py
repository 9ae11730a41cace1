"""Retrieval through the real ``aape`` command: fit -> test from the checkpoint alone -> predict top captions."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from aape_lightning.demo import DemoCaptionReader
from cli_helpers import checkpoints, parse_test_line, run_aape

pytestmark = pytest.mark.slow


def test_retrieval_fit_test_predict(tmp_path, tiny_clip):
    reader = {"root": str(tmp_path / "demo"), "n_train": 12, "n_test": 6, "val_from_train": 4}
    config = {
        "model": {"class_path": "RetrievalTask", "init_args": {"backbone": str(tiny_clip)}},
        "data": {"class_path": "CaptionDataModule", "init_args": {
            "reader": {"class_path": "DemoCaptionReader", "init_args": reader},
            "batch_size": 4, "eval_batch_size": 5, "num_workers": 0}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path / "runs"), "enable_progress_bar": False,
                    "accelerator": "cpu", "log_every_n_steps": 1},
    }
    cfg = tmp_path / "retrieval.yaml"
    cfg.write_text(yaml.safe_dump(config))
    fit = run_aape(["fit", "--config", str(cfg)], tmp_path / "cache")
    assert fit.returncode == 0, fit.stderr[-3000:]
    (ckpt,) = checkpoints(tmp_path / "runs")

    test = run_aape(["test", "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path / "t")],
                    tmp_path / "cache")
    assert test.returncode == 0, test.stderr[-3000:]
    got = parse_test_line(test.stdout)
    assert {"i2t_R@1", "t2i_R@10", "clip_i2t_R@1", "clip_t2i_R@10"} <= set(got)
    assert all(0 <= v <= 100 for v in got.values()) and got["i2t_R@10"] >= got["i2t_R@1"]

    images = tmp_path / "images"
    images.mkdir()
    for name in ("test_00000.png", "test_00001.png"):
        shutil.copy(tmp_path / "demo" / "DemoCaptions" / "images" / name, images / name)
    out = tmp_path / "pred.json"
    pred = run_aape(["predict", "--config", str(cfg), "--ckpt_path", str(ckpt), "--data.predict_dir", str(images), "--data.top_k", "3",
                     "--predictions.output", str(out), "--trainer.default_root_dir", str(tmp_path / "p")],
                    tmp_path / "cache")
    assert pred.returncode == 0, pred.stderr[-3000:]
    rows = json.loads(out.read_text())
    gallery = {c for r in DemoCaptionReader(**reader).read().get("test") for c in r.captions}
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["test_00000.png", "test_00001.png"]
    assert all(r[f"caption_{i}"] in gallery for r in rows for i in (1, 2, 3)) and "caption_4" not in rows[0]
    assert all(float(r["score_1"]) >= float(r["score_2"]) >= float(r["score_3"]) for r in rows)
