"""One run on two nodes: two ``torchrun`` agents on localhost (gloo, CPU) test as one process does."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aape_lightning.cli import main
from cli_helpers import aape_env, parse_test_line, write_config
from tiny_world import make_coop_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_nodes_test_like_one_process(tmp_path, cache_dir, capsys):
    """Zero-shot demo CLIP on 15 test images per set, 2 of them labelled as another class: the accuracy is not
    0 or 100 and would move if a rank dropped or padded (duplicated) an image."""
    data = make_coop_dataset(tmp_path / "Tiny", per_split=(8, 4, 5))
    split = json.loads((data / "split_zhou_Tiny.json").read_text())
    base_test = [item for item in split["test"] if item[1] == 0][:2]
    for item in base_test:
        item[1], item[2] = 1, "green circle"
    (data / "split_zhou_Tiny.json").write_text(json.dumps(split))
    cfg = write_config(tmp_path / "test.yaml", Path("demo"), data, tmp_path / "runs")
    args = ["test", "--config", str(cfg), "--config", str(CONFIGS / "classification/zero_shot.yaml"),
            "--model.backbone", "demo"]  # fmt: skip
    assert main(args) == 0
    one = parse_test_line(capsys.readouterr().out)
    assert 0 < one["base"] < 100

    port, env = free_port(), aape_env(cache_dir)
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               "-m", "aape_lightning.cli", *args, "--config", str(CONFIGS / "presets/multinode.yaml"),
                               "--trainer.default_root_dir", str(tmp_path / f"node{rank}")],
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for rank in (0, 1)]  # fmt: skip
    outs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert "MEMBER: 1/2" in outs[0] and "MEMBER: 2/2" in outs[1]  # Lightning's line: ranks 0 and 1 of a world of 2
    assert parse_test_line(outs[0]) == one
    assert "test: " not in outs[1]  # printed once, by global rank 0
