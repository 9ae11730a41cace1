"""``aape table``: methods x datasets x seeds (x a sweep), as a table, a CSV and plots.

Each run's result is written to ``<output>/<dataset>/<method>[/<sweep value>]/seed<k>/result.json``
as soon as it exists, keyed by its content: the run's arguments, the bytes of every config file
they name, and the package's own source. A second call reuses the runs whose key is unchanged, so
an interrupted table resumes and finished results are never lost or recomputed, while an edited
config or a changed method never serves a stale result. A run that fails is reported at the end
and does not stop the others (and is run again next time).

A spec (configs/table/*.yaml) picks a layout: ``base2new`` (base / new / H per dataset), ``chain``
(fit once, then test that checkpoint on every entry of ``tests``: domain generalisation and
cross-dataset transfer), ``sweep`` (one metric per value of ``sweep``: shots, prompts per class)
or ``cost`` (parameters, GFLOPs, images/s and training time per method; experiments/cost.py).
Outputs: ``<results>/<name>.md`` (mean ± std over seeds, best per column in bold), ``.csv`` (one
row per run) and ``<name>_*.png``; ``<results>`` is the output folder unless ``--results`` names
another (``make reproduce-table`` passes ``results``, the committed tables).

Where runs go is a launcher's job (launcher.py): this process, one worker per GPU (``--devices``,
local_pool.py) or one SLURM job per run (``--launcher slurm``, slurm_launcher.py). A run is
computed only under its lock (run_lock.py), so two calls on one spec share the work; SIGINT /
SIGTERM stop every worker and job, keep what finished and exit 130 / 143 (docs/scale-out.md).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import ArgumentParser

from aape_lightning.console import configure_output
from aape_lightning.data.feature_store import totals
from aape_lightning.experiments.launcher import TableInterrupted
from aape_lightning.experiments.local_pool import LocalPool
from aape_lightning.experiments.progress import Progress
from aape_lightning.experiments.run_lock import RunLock
from aape_lightning.experiments.slurm_launcher import SlurmLauncher, SlurmOptions
from aape_lightning.experiments.table_format import format_table, markdown_for
from aape_lightning.experiments.table_plots import plot_table
from aape_lightning.experiments.table_spec import Outcome, Run, TableSpec

log = logging.getLogger(__name__)

TIMING = ("wall_s", "fit_s_per_epoch")  # per-run measurements that are not accuracies


def _named_results(target: str, results: dict[str, float], diagnostics: tuple[str, ...]) -> dict[str, float]:
    """One test's accuracies under the target's name: ``target`` for the accuracy, ``target shuffled``..."""
    split = {}
    for key in results:
        stem, _, diag = key.rpartition("_")
        split[key] = (stem, diag) if diag in diagnostics else (key, "")
    several = len({stem for stem, diag in split.values() if not diag}) > 1  # e.g. base and new
    named = {}
    for key, value in results.items():
        stem, diag = split[key]
        name = f"{target} {stem}" if several else target
        named[f"{name} {diag}" if diag else name] = value
    return named


def run_one(args: list[str], tests: dict[str, list[str]] | None = None) -> dict[str, float]:
    """fit (when the head has anything to train), then test; returns the test accuracies and fit time.

    With ``tests``, the one fitted model is tested on each target in turn: ``[]`` tests on the fit's own
    data, other arguments are stacked on the run's for that test's data (e.g. another dataset with
    ``--data.protocol cross``).
    """
    # lazy: lightning, which a table whose runs are all done (or run by workers and jobs) never needs
    from aape_lightning.lightning_cli.aape_cli import lightning_main

    cli = lightning_main(args, run=False)
    timing = {}
    if cli.model.trains:
        start = time.perf_counter()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        timing["fit_s_per_epoch"] = (time.perf_counter() - start) / max(cli.trainer.current_epoch, 1)
    if not tests:
        cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        return {**cli.model.test_results, **timing}
    results: dict[str, float] = {}
    for target, target_args in tests.items():
        data = lightning_main([*args, *target_args], run=False).datamodule if target_args else cli.datamodule
        cli.trainer.test(cli.model, datamodule=data, verbose=False)
        results.update(_named_results(target, cli.model.test_results, getattr(cli.model.head, "diagnostics", ())))
    return {**results, **timing}


# Modules that only present finished runs, start them or measure other things: editing them reruns nothing.
PRESENTATION = frozenset(f"experiments/{m}.py" for m in ("table_format", "table_plots", "progress", "cost", "explain",
                                                          "launcher", "local_pool", "slurm_launcher", "run_lock", "process_tree",
                                                          "estimate"))


def source_digest(root: Path | None = None) -> str:
    """Hash of the installed package's code and assets: a changed method invalidates finished runs.

    Everything counts except ``PRESENTATION``: how a table is printed or plotted cannot change a run.
    """
    root = root or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".pt", ".json") and p.is_file()):
        if path.relative_to(root).as_posix() not in PRESENTATION:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_key(args: list[str], source: str, tests: dict[str, list[str]] | None = None) -> str:
    """Content key of one run: its arguments, the config files they name (parsed: comments do not count), the source."""
    digest = hashlib.sha256(json.dumps(args).encode() + source.encode())
    every = [*args, *(a for t in (tests or {}).values() for a in t)]
    if tests:
        digest.update(json.dumps(tests).encode())
    for flag, value in zip(every, every[1:]):
        if flag == "--config" and Path(value).is_file():
            digest.update(json.dumps(yaml.safe_load(Path(value).read_text(encoding="utf-8")), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _timed_run(args: list[str], tests: dict[str, list[str]] | None, threads: int | None) -> tuple[dict, float]:
    """One run and its wall time, wherever a launcher runs it (module level, so it pickles)."""
    import torch

    configure_output()  # a worker or a cluster job logs like `aape` itself
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        return run_one(args, tests), time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def _error_text(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _save(run: Run, key: str, result: dict[str, float], wall: float) -> None:
    """``result.json``, written whole or not at all (a kill never leaves half a record)."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    record = run.run_dir / "result.json"
    tmp = record.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "args": run.args, "tests": run.tests, "test": result, "wall_s": wall},
                              indent=1), encoding="utf-8")  # fmt: skip
    tmp.replace(record)


def read_record(run: Run) -> dict | None:
    """A run's saved record; ``{}`` when there is none, None when the file is unreadable (any bytes: rebuilt)."""
    record = run.run_dir / "result.json"
    if not record.is_file():
        return {}
    try:
        saved = json.loads(record.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    test = saved.get("test") if isinstance(saved, dict) else None
    valid = isinstance(test, dict) and all(isinstance(v, (int, float)) for v in test.values())
    return saved if valid and isinstance(saved.get("wall_s", 0.0), (int, float)) else None


def make_launcher(spec: TableSpec):
    """The launcher a spec asks for: the local pool (``--jobs``, ``--devices``) or SLURM through submitit."""
    if spec.launcher == "slurm":
        return SlurmLauncher(spec.slurm, spec.jobs, spec.threads_per_job)
    return LocalPool(spec.jobs, spec.device_list(), spec.threads_per_job)


def execute(runs: list[Run], source: str, launcher=None, lock_poll_s: float = 1.0, target=None) -> list[Outcome]:
    """Run (or reuse) every run through ``launcher``, with a progress line per run; failures are kept, not raised.

    Outcomes keep the runs' order whatever order they end in. A run is computed only by the process
    holding its lock (run_lock.py): a run another ``aape table`` is computing is skipped and looked at
    again later, and then reused. SIGINT / SIGTERM (``TableInterrupted``) stop the launcher's work and
    propagate, with the count of finished runs. ``target(args, tests, threads) -> (metrics, wall_s)``
    computes one run (default: fit + test, ``_timed_run``; tests give a picklable stand-in).
    """
    launcher = launcher or LocalPool()
    progress = Progress(len(runs), launcher.slots, {run.what: (run.label, run.dataset) for run in runs})
    outcomes: list[Outcome | None] = [None] * len(runs)
    keys = [run_key(run.args, source, run.tests) for run in runs]
    unreadable = []

    def reuse(i: int) -> bool:
        saved = read_record(runs[i])
        if saved is None:
            unreadable.append(runs[i].run_dir / "result.json")
        elif saved.get("key") == keys[i]:
            outcomes[i] = Outcome(runs[i], saved["test"], saved.get("wall_s", 0.0))
            progress.reused(runs[i].what)
            return True
        return False

    todo = [i for i in range(len(runs)) if not reuse(i)]
    if unreadable:
        log.warning("%d run record(s) unreadable (not a result.json this package wrote), run again: %s",
                    len(unreadable), ", ".join(map(str, unreadable)))  # fmt: skip
    running: dict = {}
    locks: dict[int, RunLock] = {}
    waiting_said: set[int] = set()

    def finished(i: int, result: dict | None, wall: float, err: BaseException | None) -> None:
        run = runs[i]
        if err is not None:
            message = _error_text(err)
            log.error("%s failed: %s", run.what, message)
            outcomes[i] = Outcome(run, {}, wall, message)
        else:
            _save(run, keys[i], result, wall)
            outcomes[i] = Outcome(run, result, wall)
        progress.finish(wall, failed=err is not None, what=run.what)

    def start_next() -> None:
        """Fill the free slots with runs nobody else holds; a run that someone else finished is reused."""
        for i in list(todo):
            if len(running) >= launcher.slots:
                return
            lock = RunLock(runs[i].run_dir)
            if not lock.acquire():
                if i not in waiting_said:
                    waiting_said.add(i)
                    log.info("%s is being computed by another `aape table`: its result will be reused", runs[i].what)
                continue
            todo.remove(i)
            if reuse(i):  # the other call finished it meanwhile
                lock.release()
                continue
            locks[i] = lock
            progress.start(runs[i].what)
            start = time.perf_counter()
            handle = launcher.submit(runs[i].run_dir, keys[i], target or _timed_run, runs[i].args, runs[i].tests,
                                     launcher.threads)  # fmt: skip
            running[handle] = (i, start)

    try:
        while todo or running:
            start_next()
            if not running:
                if todo:
                    time.sleep(lock_poll_s)  # every run left is held by another call
                continue
            for handle in launcher.wait(list(running)):
                i, start = running.pop(handle)
                try:
                    result, wall = launcher.result(handle)
                except Exception as err:  # noqa: BLE001 - one failed run (or a dead worker) must not stop the table
                    finished(i, None, time.perf_counter() - start, err)
                else:
                    finished(i, result, wall, None)
                locks.pop(i).release()
    except TableInterrupted as stop:
        launcher.stop()
        stop.done = sum(o is not None and o.error is None for o in outcomes)
        stop.total = len(runs)
        raise
    finally:
        for lock in locks.values():
            lock.release()
        launcher.close()
    return outcomes  # type: ignore[return-value]


def write_csv(outcomes: list[Outcome], path: Path) -> None:
    """One row per run: method, sweep value, dataset, seed, every metric, timing, run directory, error."""
    metrics = sorted({k for o in outcomes for k in o.metrics if k not in TIMING})
    header = ["method", "variant", "dataset", "seed", *metrics, *TIMING, "run_dir", "error"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for o in outcomes:
            values = {**o.metrics, "wall_s": o.wall_s}
            writer.writerow([o.run.method, o.run.variant or "", o.run.dataset, o.run.seed,
                             *(_fmt(values.get(m)) for m in [*metrics, *TIMING]), str(o.run.run_dir), o.error or ""])


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def failure_summary(outcomes: list[Outcome]) -> str:
    failed = [o for o in outcomes if o.error]
    if not failed:
        return f"all {len(outcomes)} runs finished"
    lines = [f"{len(failed)} of {len(outcomes)} runs failed (run the table again to retry them):"]
    lines += [f"  {o.run.what}: {o.error}" for o in failed]
    return "\n".join(lines)


def run_table(spec: TableSpec) -> tuple[str, list[Outcome]]:
    """Run a table spec; writes the markdown, CSV and plots, returns the markdown and every outcome."""
    spec.results_dir().mkdir(parents=True, exist_ok=True)  # a folder the system refuses fails now, not after the runs
    if spec.layout == "cost":
        # lazy: torch and lightning, for the cost layout only
        from aape_lightning.experiments.cost import run_cost

        return run_cost(spec), []
    runs = spec.runs()
    outcomes = execute(runs, source_digest(), make_launcher(spec))
    table = markdown_for(spec, outcomes)
    Path(spec.output).mkdir(parents=True, exist_ok=True)
    (Path(spec.output) / "table.md").write_text(table + "\n", encoding="utf-8")
    name = spec.name or Path(spec.output).name
    out = spec.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    write_csv(outcomes, out / f"{name}.csv")
    for path in plot_table(spec, outcomes, out / name):
        log.info("wrote %s", path)
    return table, outcomes


def table_parser() -> ArgumentParser:
    """The parser of ``aape table`` and of its YAML files (configs/table/*.yaml)."""
    parser = ArgumentParser(prog="aape table", description=__doc__)
    parser.add_argument("--config", action="config", help="a table YAML (e.g. configs/table/demo.yaml)")
    parser.add_argument(
        "--methods", type=dict[str, str | list[str]], required=True,
        help="method name -> config file, or [config file, extra args...]",
    )
    parser.add_argument("--base", type=list[str], default=[], help="config files stacked before each method's")
    parser.add_argument("--datasets", type=dict[str, list[str]], required=True,
                        help="dataset name -> extra args (stacked before the method's config)")
    parser.add_argument("--seeds", type=list[int], default=[1, 2, 3])
    parser.add_argument("--output", type=str, default="runs/table", help="where the runs go")
    parser.add_argument("--extra_args", type=list[str], default=[], help="arguments added to every run")
    parser.add_argument("--only", type=list[str] | None, default=None, help="run only these methods")
    parser.add_argument("--name", type=str | None, default=None, help="file name of the outputs (default: output's)")
    parser.add_argument("--title", type=str, default="", help="first line of the markdown")
    parser.add_argument("--layout", type=Literal["base2new", "chain", "sweep", "cost"], default="base2new")
    parser.add_argument("--tests", type=dict[str, list[str]] | None, default=None,
                        help="layout chain: target -> extra args of its test data ([] = the fit's own data)")
    parser.add_argument("--sweep", type=dict[str, list[str]] | None, default=None,
                        help="layout sweep: value -> extra args, run for every method")
    parser.add_argument("--sweep_name", type=str, default="value", help="what the sweep varies (shots, prompts)")
    parser.add_argument("--metric", type=str, default="H", help="the metric of sweep tables and curves")
    parser.add_argument("--curves", type=dict[str, dict[str, float]] | None, default=None,
                        help="curve name -> {method: x}: plotted as metric against x (e.g. the lambda sweep)")
    parser.add_argument("--published", type=dict[str, dict[str, float]] | None, default=None,
                        help="row label -> {column: value}: published numbers, shown in their own rows")
    parser.add_argument("--published_note", type=str, default="published, ViT-B/16")
    parser.add_argument("--results", type=str | None, default=None,
                        help="folder of the .md, .csv and .png (default: --output; `make reproduce-table` "
                             "passes `results` to refresh the committed tables)")
    parser.add_argument("--root", type=str | None, default=None, help="data root of every run (data.reader.root)")
    parser.add_argument("--backbone", type=str | None, default=None, help="CLIP of every run (model.backbone)")
    parser.add_argument("--cost", type=dict[str, int | str | None], default={},
                        help="layout cost: batch, repeats, architecture (default ViT-B/16, random weights)")
    parser.add_argument("--jobs", type=int | None, default=None,
                        help="runs at once, each in its own process (e.g. 2 on 2 CPU cores: each run uses one); "
                             "default 1, or one per device with --devices; with --launcher slurm: jobs queued at once")
    parser.add_argument("--devices", type=str | None, default=None,
                        help="GPUs to spread the runs over, e.g. 0,1,2,3: one run per GPU at a time (more with "
                             "--jobs), each pinned through CUDA_VISIBLE_DEVICES")
    parser.add_argument("--launcher", type=Literal["local", "slurm"], default="local",
                        help="local: this machine (--jobs, --devices); slurm: one submitit job per run (--slurm.*)")
    parser.add_argument("--slurm", type=SlurmOptions, default=SlurmOptions(),
                        help="launcher slurm: each run's job resources")
    parser.add_argument("--threads_per_job", type=int | None, default=None,
                        help="torch threads of each run (default: all CPUs with --jobs 1, else CPUs / jobs)")
    return parser


def _interrupted(signum: int, frame) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    raise TableInterrupted(signum)


def table_main(argv: list[str] | None = None) -> int:
    """Run a table; exits 1 when some runs failed (the table of the others is still written).

    SIGINT / SIGTERM end it cleanly: workers and jobs stopped, finished runs kept, one line, exit 130 / 143.
    """
    cfg = table_parser().parse_args(argv)
    values = {k: v for k, v in cfg.as_dict().items() if k != "config" and not k.startswith("__")}
    values["slurm"] = SlurmOptions(**(values.get("slurm") or {}))
    spec = TableSpec(**values)
    previous = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        table, outcomes = run_table(spec)
    except TableInterrupted as stop:
        print(f"interrupted: {stop.done} of {stop.total} runs done; rerun the same command to resume", file=sys.stderr)
        return 128 + stop.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(table)
    if outcomes:
        print(totals(o.run.run_dir for o in outcomes))  # images encoded / read from the feature store, summed
    failed = any(o.error for o in outcomes)
    if outcomes:
        (log.error if failed else log.info)(failure_summary(outcomes))
    return 1 if failed else 0


__all__ = ["Outcome", "Run", "TableSpec", "format_table", "run_table", "table_main", "table_parser"]
