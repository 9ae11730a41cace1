"""The demo commands, called in-process."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from aape_lightning.demo import DEMO_DATASETS, demo_main


def test_build_data_writes_every_dataset(tmp_path: Path, capsys) -> None:
    assert demo_main(["build-data", "--root", str(tmp_path), "--seed", "2"]) == 0
    for name in [*DEMO_DATASETS, "DemoCaptions"]:
        assert json.loads((tmp_path / name / "manifest.json").read_text())["seed"] == 2
    assert str(tmp_path / "DemoShapes") in capsys.readouterr().out


def test_build_clip_short_run(tmp_path: Path) -> None:
    out = tmp_path / "clip.pt"
    args = ["build-clip", "--out", str(out), "--seed", "1", "--steps", "2", "--batch-size", "4", "--pool-size", "8"]
    assert demo_main(args) == 0
    extra = torch.load(out, weights_only=True)["extra"]
    assert (extra["seed"], extra["steps"], extra["pool_size"]) == (1, 2, 8)


def test_probe_prints_one_row_per_dataset_half(tmp_path: Path, capsys) -> None:
    assert demo_main(["probe", "--root", str(tmp_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["dataset"], r["half"]) for r in rows] == [(n, h) for n in DEMO_DATASETS for h in ("base", "new")]
    for r in rows:
        assert 0 <= r["template"] <= 100 and 0 <= r["prompts"] <= 100 and r["chance"] == round(100 / r["classes"], 2)
