"""An interrupted run resumes exactly: kill -9 mid-epoch, ``aape fit --ckpt_path last``, same tensors bit for bit."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
import yaml

from cli_helpers import aape_env, write_config
from tiny_world import make_coop_dataset

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 3  # 3 base classes x 4 shots = 12 images, batches of 4
EPOCHS = 2
KILL_AT = 4  # after step 4: epoch 1, one batch of three done


def fit(cfg, env, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aape_lightning.cli", "fit", "--config", str(cfg), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def final_checkpoint(root):
    """The checkpoint of the last step under ``root``, by its recorded global step."""
    states = [torch.load(p, map_location="cpu", weights_only=False) for p in root.rglob("*.ckpt")]
    return max(states, key=lambda s: s["global_step"])


@pytest.mark.parametrize("views", [0, 2], ids=["fresh_augmentation", "stored_views"])
def test_killed_mid_epoch_then_resumed_with_last_equals_an_uninterrupted_run(tmp_path, tiny_clip, views):
    data = make_coop_dataset(tmp_path / "Tiny")
    env = aape_env(tmp_path / "cache")
    checkpoint_every_step = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"every_n_train_steps": 1, "save_top_k": -1, "filename": "{step}"},
    }

    def config(name, *callbacks):
        cfg = write_config(tmp_path / f"{name}.yaml", tiny_clip, data, tmp_path / name, max_epochs=EPOCHS)
        config = yaml.safe_load(cfg.read_text())
        config["data"]["init_args"]["batch_size"] = 4  # augment stays on: random crops draw from torch's RNG
        config["data"]["init_args"]["feature_views"] = views  # stored views: the view drawn per image does
        config["trainer"]["callbacks"] = [checkpoint_every_step, *callbacks]
        cfg.write_text(yaml.safe_dump(config))
        return cfg

    killer = {"class_path": "kill_at_step.KillAtStep", "init_args": {"step": KILL_AT}}
    whole, killed = fit(config("whole"), env), fit(config("killed", killer), env)  # side by side: 2 cores
    whole, killed = finish(whole), finish(killed)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert final_checkpoint(tmp_path / "killed")["global_step"] == KILL_AT
    assert KILL_AT % STEPS_PER_EPOCH != 0  # mid-epoch

    resumed = finish(fit(config("killed"), env, "--ckpt_path", "last"))  # same root, without the killer
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"step={KILL_AT}.ckpt" in resumed.stderr  # `last` found the killed run's checkpoint
    new_run = sorted((tmp_path / "killed" / "lightning_logs").iterdir())[-1]
    steps = sorted(int(p.stem.split("=")[1]) for p in new_run.rglob("*.ckpt"))
    assert steps == list(range(KILL_AT + 1, EPOCHS * STEPS_PER_EPOCH + 1))  # it continued, it did not start over

    a, b = final_checkpoint(tmp_path / "whole"), final_checkpoint(tmp_path / "killed")
    assert a["global_step"] == b["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert a["state_dict"].keys() == b["state_dict"].keys()
    differ = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not differ, f"resumed weights differ from the uninterrupted run's: {differ}"
    moments = [(x, y) for sa, sb in zip(a["optimizer_states"][0]["state"].values(),
                                        b["optimizer_states"][0]["state"].values())
               for x, y in zip(sa.values(), sb.values()) if torch.is_tensor(x)]
    assert moments and all(torch.equal(x, y) for x, y in moments)
