"""SIGTERM and Ctrl-C to ``aape table``: workers gone within 10 s, finished runs kept, one line, 143 / 130; the rerun finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from aape_lightning.experiments.process_tree import alive, descendants
from cli_helpers import aape_env

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
pytestmark = pytest.mark.slow


def start_table(args: list[str], env: dict) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "aape_lightning.cli", "table", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


def wait_for(lines: list[str], text: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert proc.poll() is None, "".join(lines)[-3000:]
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.2)


def interrupt(proc, lines, sig, after: str) -> tuple[int, float, set[int]]:
    """Send ``sig`` once ``after`` was logged and coop is mid-fit; exit code, seconds to exit, survivors."""
    wait_for(lines, after, proc)
    wait_for(lines, "running coop", proc)
    time.sleep(1.0)  # coop is in its (slowed) training step
    children = descendants(proc.pid)
    start = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    seconds = time.monotonic() - start
    deadline = time.monotonic() + max(10 - seconds, 0)
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    return code, seconds, alive(children)


def test_sigterm_and_ctrl_c_stop_the_table_cleanly_and_the_rerun_finishes(tmp_path, tiny_clip, tiny_dataset):
    slow = tmp_path / "slow.yaml"
    slow.write_text(yaml.safe_dump({"trainer": {"callbacks": [{"class_path": "slow_steps.SlowSteps"}]}}))
    spec = {
        "methods": {"zero_shot": str(CONFIGS / "classification/zero_shot.yaml"),
                    "coop": [str(CONFIGS / "classification/coop.yaml"), "--config", str(slow)]},
        "base": [str(CONFIGS / "fewshot.yaml")],
        "datasets": {"Tiny": ["--data.reader.root", str(tiny_dataset)]},
        "seeds": [1], "output": str(tmp_path / "table"), "name": "t",
        "extra_args": ["--model.backbone", str(tiny_clip), "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                       "--trainer.precision", "32-true", "--data.num_workers", "0", "--data.shots", "2",
                       "--trainer.enable_progress_bar", "false"],
    }
    cfg = tmp_path / "table.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    env = {**aape_env(tmp_path / "cache"), "AAPE_TEST_SLOW": "60"}
    line = "interrupted: 1 of 2 runs done; rerun the same command to resume"

    # SIGTERM with two worker processes
    proc, lines = start_table(["--config", str(cfg), "--jobs", "2", "--threads_per_job", "1"], env)
    code, seconds, survivors = interrupt(proc, lines, signal.SIGTERM, "finished zero_shot")
    out = "".join(lines)
    assert code == 143 and seconds < 10 and not survivors, out[-3000:]
    assert out.count(line) == 1 and "Traceback" not in out
    assert len(list((tmp_path / "table").rglob("result.json"))) == 1  # the finished run is kept

    # Ctrl-C (SIGINT), one run at a time in the runner's own process
    proc, lines = start_table(["--config", str(cfg)], env)
    code, seconds, survivors = interrupt(proc, lines, signal.SIGINT, "reused zero_shot")
    out = "".join(lines)
    assert code == 130 and seconds < 10 and not survivors, out[-3000:]
    assert out.count(line) == 1 and "Traceback" not in out and "KeyboardInterrupt" not in out
    assert "reused zero_shot" in out

    # the same command again (no longer slowed) finishes the table, reusing the run done before
    env.pop("AAPE_TEST_SLOW")
    done = subprocess.run([sys.executable, "-m", "aape_lightning.cli", "table", "--config", str(cfg)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reused zero_shot" in done.stderr and "all 2 runs finished" in done.stderr
    assert "| coop |" in (tmp_path / "table" / "t.md").read_text()
    assert os.path.exists(tmp_path / "table" / "Tiny" / "coop" / "seed1" / "result.json")
