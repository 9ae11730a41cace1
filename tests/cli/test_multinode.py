"""One run on two nodes: two ``torchrun`` agents on localhost (gloo, CPU) test a checkpoint as one process does."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aape_lightning.cli import main
from cli_helpers import aape_env, checkpoints, parse_test_line, write_config
from tiny_world import make_coop_dataset

PRESET = Path(__file__).resolve().parents[2] / "configs" / "presets" / "multinode.yaml"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_nodes_test_like_one_process(tmp_path, tiny_clip, cache_dir, capsys):
    data = make_coop_dataset(tmp_path / "Tiny", per_split=(8, 4, 5))  # odd test sets: padding would show
    cfg = write_config(tmp_path / "fit.yaml", tiny_clip, data, tmp_path / "runs", max_epochs=4)
    assert main(["fit", "--config", str(cfg)]) == 0
    (ckpt,) = checkpoints(tmp_path / "runs")
    capsys.readouterr()
    args = ["test", "--config", str(cfg), "--ckpt_path", str(ckpt)]
    assert main(args) == 0
    one = parse_test_line(capsys.readouterr().out)

    port, env = free_port(), aape_env(cache_dir)
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               "-m", "aape_lightning.cli", *args, "--config", str(PRESET),
                               "--trainer.default_root_dir", str(tmp_path / f"node{rank}")],
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for rank in (0, 1)]  # fmt: skip
    outs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert parse_test_line(outs[0]) == one
    assert "test: " not in outs[1]  # printed once, by global rank 0
    assert "MEMBER: 1/2" in outs[0] and "MEMBER: 2/2" in outs[1]  # Lightning's line: rank 0 and 1 of a world of 2
    print("one process:", one)
