"""The SLURM launcher of ``aape table --launcher slurm``: one submitit job per run.

submitit (Meta's launcher) pickles the run's call into ``<run_dir>/slurm/``, submits it with
``sbatch`` and writes the job's stdout / stderr and result there. The job's id is stored in
``<run_dir>/slurm/job.json`` with the run's content key, so a second ``aape table`` (after Ctrl-C,
a lost login, or on another node) re-attaches to a job that is still queued or running instead of
submitting it again; a job that failed or was cancelled is submitted afresh. ``cluster: local``
runs the same job code through submitit's ``LocalExecutor`` (local processes: to try a spec, and
for the tests); nothing here is ever tested on a real cluster.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aape_lightning.experiments.launcher import Launcher
from aape_lightning.experiments.process_tree import alive, descendants, kill_all

DEAD = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


@dataclass
class SlurmOptions:
    """The resources of each run's job (the ``slurm:`` block of a table YAML, or ``--slurm.<name>``).

    Args:
        partition: SLURM partition (None: the cluster's default).
        time_min: wall-time limit of one run's job, in minutes.
        gpus_per_run: GPUs of each job (one run; more only for a run that is itself DDP).
        cpus_per_run: CPUs of each job (data loading and torch threads).
        mem_gb: memory of each job, in GB.
        account: SLURM account to charge (None: the user's default).
        setup: shell lines run before the job (e.g. ``module load cuda``, ``source .venv/bin/activate``).
        additional: any other sbatch option, name -> value (e.g. ``{qos: high, constraint: a100}``).
        cluster: ``slurm``, or ``local`` (submitit's LocalExecutor: the same jobs as local processes).
        poll_s: seconds between two looks at the jobs' states.
    """

    partition: str | None = None
    time_min: int = 240
    gpus_per_run: int = 1
    cpus_per_run: int = 8
    mem_gb: int = 32
    account: str | None = None
    setup: list[str] = field(default_factory=list)
    additional: dict[str, str | int] = field(default_factory=dict)
    cluster: Literal["slurm", "local"] = "slurm"
    poll_s: float = 5.0


class JobFailed(RuntimeError):
    """A run's job ended without a result; the message is the job's last error line and where its logs are."""


def _alive(pid: int) -> bool:
    return bool(alive({pid}))


def _last_error_line(err: BaseException) -> str:
    """submitit's FailedJobError carries the job's whole traceback: keep the error's first line (after the last frame)."""
    trace = [ln for ln in str(err).split("You can check full logs")[0].splitlines() if ln.strip().strip("-")]
    frames = [k for k, ln in enumerate(trace) if ln.startswith(" ")]
    after = trace[frames[-1] + 1:] if frames else trace[-1:]
    return after[0].strip() if after else type(err).__name__


class SlurmLauncher(Launcher):
    """One submitit job per run, with the job id stored next to the run (see the module docstring)."""

    def __init__(self, options: SlurmOptions | None = None, jobs: int | None = None, threads: int | None = None) -> None:
        self.options = options or SlurmOptions()
        self.slots = jobs or 1_000_000  # jobs in the queue at once (default: every run)
        self.threads = threads
        self.submitted: list[str] = []  # job ids this launcher submitted (not re-attached)
        self._live: list[Any] = []

    def _executor(self, folder: Path):
        import submitit

        o = self.options
        if o.cluster == "local":
            executor = submitit.LocalExecutor(folder)
            executor.update_parameters(timeout_min=o.time_min, gpus_per_node=o.gpus_per_run)
            return executor
        executor = submitit.SlurmExecutor(folder)
        extra = {**o.additional, **({"account": o.account} if o.account else {})}
        executor.update_parameters(partition=o.partition, time=o.time_min, nodes=1, ntasks_per_node=1,
                                   gpus_per_node=o.gpus_per_run, cpus_per_task=o.cpus_per_run,
                                   mem=f"{o.mem_gb}GB", setup=o.setup, additional_parameters=extra,
                                   job_name="aape-table")  # fmt: skip
        return executor

    def _reattach(self, folder: Path, job_id: str):
        """The stored job when it is still queued, running or has its result; None when it must be resubmitted."""
        import submitit

        if self.options.cluster == "local":
            job = submitit.LocalJob(folder, job_id)
            return job if job.paths.result_pickle.exists() or _alive(int(job_id)) else None
        job = submitit.SlurmJob(folder, job_id)
        return None if job.state.split()[0] in DEAD else job

    def submit(self, run_dir: Path, key: str, fn: Callable[..., Any], *args: Any) -> Any:
        folder = Path(run_dir) / "slurm"
        record = folder / "job.json"
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        job = None
        if isinstance(saved, dict) and saved.get("key") == key and saved.get("cluster") == self.options.cluster:
            job = self._reattach(folder, str(saved.get("job_id")))
        if job is None:
            job = self._executor(folder).submit(fn, *args)
            self.submitted.append(job.job_id)
            folder.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"key": key, "job_id": job.job_id, "cluster": self.options.cluster}), encoding="utf-8")
        self._live.append(job)
        return job

    def _ended(self, job) -> bool:
        if getattr(job, "_process", True) is None:  # a local job re-attached from an earlier call
            return job.paths.result_pickle.exists() or not _alive(int(job.job_id))
        return job.done()

    def wait(self, handles: list[Any]) -> list[Any]:
        while True:
            ended = [job for job in handles if self._ended(job)]
            if ended:
                for job in ended:
                    self._live.remove(job)
                return ended
            time.sleep(min(self.options.poll_s, 0.5) if self.options.cluster == "local" else self.options.poll_s)

    def result(self, job) -> Any:
        if not job.paths.result_pickle.exists() and getattr(job, "_process", True) is None:
            raise JobFailed(f"job {job.job_id} ended without a result; logs in {job.paths.folder}")
        try:
            return job.result()
        except Exception as err:  # noqa: BLE001 - whatever submitit raised, one line for the summary
            raise JobFailed(f"{_last_error_line(err)}; logs in {job.paths.folder}") from None

    def stop(self) -> None:
        """Cancel every job in flight (scancel, or SIGINT to a local job); what a local job started is then killed."""
        local = {int(job.job_id) for job in self._live if self.options.cluster == "local"}
        started = {p for pid in local for p in descendants(pid)} | local
        for job in self._live:
            if getattr(job, "_process", True) is None:
                try:
                    os.kill(int(job.job_id), signal.SIGINT)
                except ProcessLookupError:
                    pass
            else:
                job.cancel(check=False)
        deadline = time.monotonic() + 6
        for job in self._live:
            process = getattr(job, "_process", None)
            if process is not None:
                try:
                    process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except Exception:  # noqa: BLE001 - still alive: killed below
                    pass
        kill_all(started)  # the job's own children (a DataLoader worker, a subprocess) with it
        self._live.clear()
