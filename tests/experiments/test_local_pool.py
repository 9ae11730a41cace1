"""The local pool: --devices gives one run per device at a time (a fake device list: no GPU needed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from aape_lightning.experiments import table as table_module
from aape_lightning.experiments.local_pool import LocalPool


def probe(args, tests, threads):
    """A stand-in for a run: which device it was given, its worker, and when it ran."""
    start = time.time()
    time.sleep(float(args[1]))
    return {"device": float(os.environ["CUDA_VISIBLE_DEVICES"]), "pid": float(os.getpid()), "start": start,
            "end": time.time(), "threads": float(threads)}, time.time() - start


def fake_runs(tmp_path: Path, n: int, seconds: float) -> list[table_module.Run]:
    return [table_module.Run(f"m{k}", "D", 1, None, ["--sleep", str(seconds), f"--run{k}"], tmp_path / f"m{k}")
            for k in range(n)]  # fmt: skip


def test_devices_get_one_run_each_at_a_time_and_outcomes_keep_spec_order(tmp_path):
    runs = fake_runs(tmp_path, 8, 0.6)
    pool = LocalPool(devices=["0", "1", "2", "3"])
    assert pool.slots == 4 and pool.threads >= 1
    outcomes = table_module.execute(runs, "src", pool, target=probe)
    assert [o.run for o in outcomes] == runs and not any(o.error for o in outcomes)
    got = [o.metrics for o in outcomes]
    assert {m["device"] for m in got} == {0.0, 1.0, 2.0, 3.0}
    for a in got:  # two runs that overlap in time never share a device
        for b in got:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["device"] != b["device"]
    # one worker per device, kept for the next run there
    assert len({m["pid"] for m in got}) == 4
    assert all(len({m["pid"] for m in got if m["device"] == d}) == 1 for d in (0.0, 1.0, 2.0, 3.0))
    # finished runs were saved and a second call reuses them without starting anything
    assert main_reuses(runs)


def main_reuses(runs) -> bool:
    def never(*args):
        raise AssertionError("a finished run was started again")

    outcomes = table_module.execute(runs, "src", LocalPool(devices=["0", "1"]), target=never)
    return all(o.metrics and not o.error for o in outcomes)


def test_more_runs_per_device_only_when_asked():
    assert LocalPool(devices=["0", "1"]).devices == ["0", "1"]
    assert LocalPool(jobs=4, devices=["0", "1"]).devices == ["0", "1", "0", "1"]
    assert LocalPool(jobs=1).in_process and not LocalPool(devices=["3"]).in_process
