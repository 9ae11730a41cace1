"""The offline default end to end: demo CLIP + a demo dataset through `aape fit` and `aape test`."""

from __future__ import annotations

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
