"""--launcher slurm through submitit's local executor: the local runner's table, reuse, job ids kept, no resubmission."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from aape_lightning.cli import main
from aape_lightning.experiments.slurm_launcher import SlurmLauncher, SlurmOptions

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
pytestmark = pytest.mark.slow  # each run is a submitit job: a fresh python process


def spec_file(tmp_path: Path, tiny_clip, tiny_dataset) -> Path:
    spec = {
        "methods": {"zero_shot": str(CONFIGS / "classification/zero_shot.yaml"),
                    "coop": str(CONFIGS / "classification/coop.yaml")},
        "base": [str(CONFIGS / "fewshot.yaml")],
        "datasets": {"Tiny": ["--data.reader.root", str(tiny_dataset)]},
        "seeds": [1], "name": "t",
        "extra_args": ["--model.backbone", str(tiny_clip), "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                       "--trainer.precision", "32-true", "--data.num_workers", "0", "--data.shots", "2",
                       "--trainer.enable_progress_bar", "false"],
        "slurm": {"cluster": "local", "gpus_per_run": 0, "time_min": 10},
    }
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def rows(path: Path, output: Path) -> list[dict]:
    out = list(csv.DictReader(path.open()))
    for row in out:
        row.pop("wall_s"), row.pop("fit_s_per_epoch")
        row["run_dir"] = str(Path(row["run_dir"]).relative_to(output))
    return out


def test_submitit_local_gives_the_local_table_and_a_second_call_reuses_every_run(tmp_path, tiny_clip, tiny_dataset,
                                                                                  cache_dir, caplog):  # fmt: skip
    cfg = spec_file(tmp_path, tiny_clip, tiny_dataset)
    assert main(["table", "--config", str(cfg), "--output", str(tmp_path / "local"), "--threads_per_job", "1"]) == 0
    slurm = ["table", "--config", str(cfg), "--output", str(tmp_path / "slurm"), "--launcher", "slurm",
             "--threads_per_job", "1"]  # fmt: skip
    assert main(slurm) == 0
    assert (tmp_path / "slurm/t.md").read_text() == (tmp_path / "local/t.md").read_text()
    assert rows(tmp_path / "slurm/t.csv", tmp_path / "slurm") == rows(tmp_path / "local/t.csv", tmp_path / "local")
    for method in ("zero_shot", "coop"):
        jobs = tmp_path / "slurm/Tiny" / method / "seed1/slurm"
        record = json.loads((jobs / "job.json").read_text())
        assert record["cluster"] == "local" and record["job_id"]
        assert (jobs / f"{record['job_id']}_0_log.err").stat().st_size > 0  # the job's own log, under its run
    caplog.set_level("INFO")
    assert main(slurm) == 0
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[table ")]
    assert len(progress) == 2 and all("reused" in line for line in progress)


def test_a_job_still_running_is_reattached_not_resubmitted(tmp_path):
    options = SlurmOptions(cluster="local", gpus_per_run=0, time_min=5)
    first = SlurmLauncher(options)
    job = first.submit(tmp_path / "run", "key1", subprocess.check_output, ["sh", "-c", "sleep 3; echo done"])
    assert first.submitted == [job.job_id]
    second = SlurmLauncher(options)  # as a second `aape table` would, while the job runs
    again = second.submit(tmp_path / "run", "key1", subprocess.check_output, ["sh", "-c", "echo resubmitted"])
    assert second.submitted == [] and again.job_id == job.job_id
    (ended,) = second.wait([again])
    assert second.result(ended) == b"done\n"
    # a changed run (another key) is a new job
    third = SlurmLauncher(options)
    new = third.submit(tmp_path / "run", "key2", subprocess.check_output, ["sh", "-c", "echo new"])
    assert third.submitted == [new.job_id] != [job.job_id]
    third.wait([new])
    assert third.result(new) == b"new\n"


def test_a_failed_job_is_one_line_naming_its_logs(tmp_path):
    launcher = SlurmLauncher(SlurmOptions(cluster="local", gpus_per_run=0, time_min=5))
    job = launcher.submit(tmp_path / "run", "k", subprocess.check_output, ["sh", "-c", "exit 3"])
    launcher.wait([job])
    with pytest.raises(RuntimeError) as err:
        launcher.result(job)
    message = str(err.value)
    assert "CalledProcessError" in message and "exit status 3" in message and str(tmp_path / "run/slurm") in message
    assert "\n" not in message


def test_stop_ends_a_running_job_and_everything_it_started(tmp_path):
    import time

    from aape_lightning.experiments.process_tree import alive, descendants

    launcher = SlurmLauncher(SlurmOptions(cluster="local", gpus_per_run=0, time_min=5))
    job = launcher.submit(tmp_path / "run", "k", subprocess.check_output, ["sh", "-c", "sleep 60"])
    controller = job._process.pid
    deadline = time.monotonic() + 60
    while not any("sleep" in Path(f"/proc/{p}/cmdline").read_text() for p in alive(descendants(controller))):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    started = descendants(controller) | {controller}
    start = time.monotonic()
    launcher.stop()
    while alive(started) and time.monotonic() - start < 10:
        time.sleep(0.1)
    assert not alive(started) and time.monotonic() - start < 10
