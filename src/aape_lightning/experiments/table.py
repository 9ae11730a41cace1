"""``aape table``: methods x datasets x seeds (x a sweep), in one process, as a table, a CSV and plots.

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
row per run) and ``<name>_*.png``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import ArgumentParser

from aape_lightning.errors import TableError
from aape_lightning.experiments.progress import Progress
from aape_lightning.experiments.table_format import format_table, markdown_for

log = logging.getLogger(__name__)

TIMING = ("wall_s", "fit_s_per_epoch")  # per-run measurements that are not accuracies


@dataclass
class Run:
    """One cell of the grid: what to run and where its result goes."""

    method: str
    dataset: str
    seed: int
    variant: str | None
    args: list[str]
    run_dir: Path
    tests: dict[str, list[str]] | None = None

    @property
    def label(self) -> str:
        """The table row: the method, with its sweep value when there is one."""
        return self.method if self.variant is None else f"{self.method} @ {self.variant}"

    @property
    def what(self) -> str:
        """How progress lines and the failure summary name the run."""
        return f"{self.label} on {self.dataset}, seed {self.seed}"


@dataclass
class Outcome:
    run: Run
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    error: str | None = None


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
    from aape_lightning.cli import lightning_main

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


# Modules that only present finished runs (or measure other things): editing them reruns nothing.
PRESENTATION = frozenset(f"experiments/{m}.py" for m in ("table_format", "table_plots", "progress", "cost", "explain"))


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
            digest.update(json.dumps(yaml.safe_load(Path(value).read_text()), sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclass
class TableSpec:
    """A table YAML, parsed (see ``table_parser`` for each field)."""

    methods: dict[str, str | list[str]]
    datasets: dict[str, list[str]]
    base: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    output: str = "runs/table"
    extra_args: list[str] = field(default_factory=list)
    only: list[str] | None = None
    name: str | None = None
    title: str = ""
    layout: Literal["base2new", "chain", "sweep", "cost"] = "base2new"
    tests: dict[str, list[str]] | None = None
    sweep: dict[str, list[str]] | None = None
    sweep_name: str = "value"
    metric: str = "H"
    curves: dict[str, dict[str, float]] | None = None
    published: dict[str, dict[str, float]] | None = None
    published_note: str = "published, ViT-B/16"
    results: str | None = "results"
    root: str | None = None
    backbone: str | None = None
    cost: dict[str, int | str | None] = field(default_factory=dict)
    jobs: int = 1
    threads_per_job: int | None = None

    def chosen(self) -> dict[str, list[str]]:
        unknown = sorted(set(self.only or []) - set(self.methods))
        if unknown:
            raise TableError(f"unknown method(s) {unknown}; known: {sorted(self.methods)}")
        # a method is a config file, or [config file, extra args...] (e.g. an ablation's override)
        chosen = {k: ([v] if isinstance(v, str) else list(v)) for k, v in self.methods.items()
                  if not self.only or k in self.only}  # fmt: skip
        for name, path in [*((k, v[0]) for k, v in chosen.items()), *(("base", b) for b in self.base)]:
            if not Path(path).is_file():
                raise TableError(f"method {name!r}: config file {path} does not exist (paths are relative to {os.getcwd()})")
        if self.layout == "chain" and not self.tests:
            raise TableError("layout 'chain' needs `tests:` (target name -> extra arguments; [] = the fit's own data)")
        if self.jobs < 1 or (self.threads_per_job is not None and self.threads_per_job < 1):
            raise TableError(f"--jobs {self.jobs} / --threads_per_job {self.threads_per_job}: both must be at least 1")
        if self.layout == "sweep" and not self.sweep:
            raise TableError("layout 'sweep' needs `sweep:` (value -> extra arguments, e.g. '1': [--data.shots, '1'])")
        return chosen

    def user_args(self) -> list[str]:
        """``--root`` and ``--backbone``: the data root and CLIP of every run (the Makefile's DATA and BACKBONE)."""
        args = ["--data.reader.root", self.root] if self.root else []
        return args + (["--model.backbone", self.backbone] if self.backbone else [])

    def runs(self) -> list[Run]:
        runs = []
        variants = self.sweep or {None: []}
        # a chained test's own data config must not undo --root / --backbone
        tests = {t: [*a, *self.user_args()] if a else [] for t, a in self.tests.items()} if self.tests else None
        for method, (method_config, *method_args) in self.chosen().items():
            for variant, variant_args in variants.items():
                for dataset, dataset_args in self.datasets.items():
                    for seed in self.seeds:
                        run_dir = Path(self.output) / dataset / method
                        run_dir = (run_dir / f"{self.sweep_name}{variant}" if variant is not None else run_dir) / f"seed{seed}"
                        args = [a for c in self.base for a in ("--config", c)]
                        args += [*dataset_args, "--config", method_config, *method_args, *variant_args,
                                 "--seed_everything", str(seed), "--data.seed", str(seed),
                                 "--trainer.default_root_dir", str(run_dir), *self.extra_args, *self.user_args()]
                        variant_name = None if variant is None else str(variant)
                        runs.append(Run(method, dataset, seed, variant_name, args, run_dir, tests))
        return runs


def _timed_run(args: list[str], tests: dict[str, list[str]] | None, threads: int | None) -> tuple[dict, float]:
    """One run and its wall time; in a worker process of ``--jobs`` (module level, so it pickles)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        return run_one(args, tests), time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def _init_worker() -> None:
    """A spawned worker logs like ``aape`` itself (the progress lines stay with the parent)."""
    from aape_lightning.cli import configure_output

    configure_output()


def _error_text(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _save(run: Run, key: str, result: dict[str, float], wall: float) -> None:
    """``result.json``, written whole or not at all (a kill never leaves half a record)."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    record = run.run_dir / "result.json"
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "args": run.args, "tests": run.tests, "test": result, "wall_s": wall},
                              indent=1))  # fmt: skip
    tmp.replace(record)


def execute(runs: list[Run], source: str, jobs: int = 1, threads: int | None = None) -> list[Outcome]:
    """Run (or reuse) every run, ``jobs`` at a time, with a progress line per run; failures are kept, not raised.

    ``jobs > 1`` runs in spawned worker processes with ``threads`` torch threads each (default: the
    CPUs this process may use, shared out); outcomes keep the runs' order whatever order they end in.
    """
    progress = Progress(len(runs), parallel=jobs)
    outcomes: list[Outcome | None] = [None] * len(runs)
    pending = []
    for i, run in enumerate(runs):
        key = run_key(run.args, source, run.tests)
        record = run.run_dir / "result.json"
        saved = json.loads(record.read_text()) if record.is_file() else {}
        if saved.get("key") == key:
            outcomes[i] = Outcome(run, saved["test"], saved.get("wall_s", 0.0))
            progress.reused(run.what)
        else:
            pending.append((i, run, key))

    def finished(i: int, run: Run, key: str, result: dict | None, wall: float, err: BaseException | None):
        if err is not None:
            message = _error_text(err)
            log.error("%s failed: %s", run.what, message)
            outcomes[i] = Outcome(run, {}, wall, message)
        else:
            _save(run, key, result, wall)
            outcomes[i] = Outcome(run, result, wall)
        progress.finish(wall, failed=err is not None, what=run.what)

    if jobs <= 1:
        for i, run, key in pending:
            progress.start(run.what)
            start = time.perf_counter()
            try:
                result, wall = _timed_run(run.args, run.tests, threads)
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the table
                finished(i, run, key, None, time.perf_counter() - start, err)
            else:
                finished(i, run, key, result, wall, None)
        return outcomes  # type: ignore[return-value]

    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = threads or max(cpus // jobs, 1)
    context = multiprocessing.get_context("spawn")  # no forked torch / CUDA state in the workers
    todo, running = list(pending), {}
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker) as pool:
        while todo or running:
            while todo and len(running) < jobs:  # keep exactly `jobs` in flight, so "running" is true
                i, run, key = todo.pop(0)
                progress.start(run.what)
                running[pool.submit(_timed_run, run.args, run.tests, threads)] = (i, run, key, time.perf_counter())
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i, run, key, start = running.pop(future)
                try:
                    result, wall = future.result()
                except Exception as err:  # noqa: BLE001 - as above, and a worker that died is one failed run
                    finished(i, run, key, None, time.perf_counter() - start, err)
                else:
                    finished(i, run, key, result, wall, None)
    return outcomes  # type: ignore[return-value]


def write_csv(outcomes: list[Outcome], path: Path) -> None:
    """One row per run: method, sweep value, dataset, seed, every metric, timing, run directory, error."""
    metrics = sorted({k for o in outcomes for k in o.metrics if k not in TIMING})
    header = ["method", "variant", "dataset", "seed", *metrics, *TIMING, "run_dir", "error"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
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
    if spec.layout == "cost":
        from aape_lightning.experiments.cost import run_cost

        return run_cost(spec), []
    outcomes = execute(spec.runs(), source_digest(), spec.jobs, spec.threads_per_job)
    table = markdown_for(spec, outcomes)
    Path(spec.output).mkdir(parents=True, exist_ok=True)
    (Path(spec.output) / "table.md").write_text(table + "\n")
    if spec.results:
        name = spec.name or Path(spec.output).name
        out = Path(spec.results)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.md").write_text(table + "\n")
        write_csv(outcomes, out / f"{name}.csv")
        from aape_lightning.experiments.table_plots import plot_table

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
    parser.add_argument("--results", type=str | None, default="results", help="folder of the .md, .csv and .png")
    parser.add_argument("--root", type=str | None, default=None, help="data root of every run (data.reader.root)")
    parser.add_argument("--backbone", type=str | None, default=None, help="CLIP of every run (model.backbone)")
    parser.add_argument("--cost", type=dict[str, int | str | None], default={},
                        help="layout cost: batch, repeats, architecture (default ViT-B/16, random weights)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, each in its own process (e.g. 2 on 2 CPU cores: each run uses one)")
    parser.add_argument("--threads_per_job", type=int | None, default=None,
                        help="torch threads of each run (default: all CPUs with --jobs 1, else CPUs / jobs)")
    return parser


def table_main(argv: list[str] | None = None) -> int:
    """Run a table; exits 1 when some runs failed (the table of the others is still written)."""
    cfg = table_parser().parse_args(argv)
    spec = TableSpec(**{k: v for k, v in cfg.as_dict().items() if k != "config" and not k.startswith("__")})
    table, outcomes = run_table(spec)
    print(table)
    if outcomes:
        from aape_lightning.data.feature_store import totals

        print(totals(o.run.run_dir for o in outcomes))  # images encoded / read from the feature store, summed
    failed = any(o.error for o in outcomes)
    if outcomes:
        (log.error if failed else log.info)(failure_summary(outcomes))
    return 1 if failed else 0


__all__ = ["Outcome", "Run", "TableSpec", "format_table", "run_table", "table_main", "table_parser"]
