"""The offline default end to end: demo CLIP + a demo dataset through `aape fit` and `aape test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aape_lightning.cli import main

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "fewshot.yaml"


@pytest.mark.slow
def test_demo_fit_then_test(tmp_path, cache_dir, capsys):
    common = ["--config", str(DEMO_CONFIG), "--data.reader.root", str(tmp_path / "demo"),
              "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.enable_progress_bar", "false"]
    assert main(["fit", *common, "--trainer.max_epochs", "3"]) == 0
    (ckpt,) = sorted((tmp_path / "runs").rglob("*.ckpt"))
    assert (tmp_path / "demo" / "DemoShapes" / "split_zhou_DemoShapes.json").is_file()
    capsys.readouterr()
    assert main(["test", *common, "--ckpt_path", str(ckpt)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("test: "))
    results = {k: float(v) for k, v in (part.split() for part in line[6:].split(" | "))}
    assert results["base"] > 2 * 100 / 6 and results["new"] > 2 * 100 / 6  # 6 classes per half: far above chance

    # the probe scores the same new-class test images as `aape test`, and its shuffle test
    from aape_lightning.demo.cli import demo_main

    assert demo_main(["probe", "--root", str(tmp_path / "demo"), "--ckpt", str(ckpt), "--json"]) == 0
    row = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()][-1]
    assert row["dataset"] == "DemoShapes" and abs(row["new"] - results["new"]) < 0.01
    assert 0 <= row["new_shuffled"] <= 100 and 0 <= row["nearest_prompt"] <= 100
