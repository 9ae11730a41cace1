"""Helpers to run ``aape`` on the tiny world in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def write_config(path: Path, backbone: Path, data_root: Path, run_dir: Path, **trainer) -> Path:
    config = {
        "model": {"class_path": "ClassificationTask", "init_args": {"backbone": str(backbone)}},
        "data": {
            "class_path": "ClassificationDataModule",
            "init_args": {
                "reader": {"class_path": "CoOpSplitReader", "init_args": {"root": str(data_root)}},
                "shots": 4,
                "batch_size": 8,
                "eval_batch_size": 4,
                "num_workers": 0,
            },
        },
        "trainer": {
            "max_epochs": 2,
            "default_root_dir": str(run_dir),
            "enable_progress_bar": False,
            "accelerator": "cpu",
            "log_every_n_steps": 1,
            **trainer,
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_aape(args: list[str], cache_dir: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "AAPE_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "aape_lightning.cli", *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


def parse_test_line(stdout: str) -> dict[str, float]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("test: "))
    return {k: float(v) for k, v in (part.split() for part in line[len("test: "):].split(" | "))}


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("*.ckpt"))


def aape_env(cache_dir: Path) -> dict[str, str]:
    """The environment ``run_aape`` uses, plus this folder on the path (for test-only callbacks) and 1 thread."""
    here = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "AAPE_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}

