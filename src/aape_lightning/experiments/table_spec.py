"""What a table is made of: its spec (a table YAML, parsed), the runs it expands to and each run's outcome.

Apart from ``table.py`` (which runs them) so that the modules presenting a table (``table_format``,
``table_plots``, ``cost``) read these types without importing the runner, and the runner imports them back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aape_lightning.errors import TableError
from aape_lightning.experiments.slurm_launcher import SlurmOptions


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
    results: str | None = None
    root: str | None = None
    backbone: str | None = None
    cost: dict[str, int | str | None] = field(default_factory=dict)
    jobs: int | None = None
    threads_per_job: int | None = None
    devices: str | None = None
    launcher: Literal["local", "slurm"] = "local"
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    def device_list(self) -> list[str]:
        """``--devices 0,1,2,3`` as ``["0", "1", "2", "3"]`` (CUDA_VISIBLE_DEVICES values); [] without it."""
        devices = [d.strip() for d in str(self.devices).split(",")] if self.devices not in (None, "") else []
        if any(not d for d in devices) or len(set(devices)) != len(devices):
            raise TableError(f"--devices {self.devices!r}: give distinct device ids separated by commas, e.g. 0,1,2,3")
        return devices

    def results_dir(self) -> Path:
        """Where the .md, .csv and .png go: ``--results``, else the output folder (results/ only when asked)."""
        return Path(self.results or self.output)

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
        if (self.jobs is not None and self.jobs < 1) or (self.threads_per_job is not None and self.threads_per_job < 1):
            raise TableError(f"--jobs {self.jobs} / --threads_per_job {self.threads_per_job}: both must be at least 1")
        if self.devices and self.launcher != "local":
            raise TableError("--devices pins local runs to GPUs; with --launcher slurm, SLURM assigns them (slurm.gpus_per_run)")
        self.device_list()
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
