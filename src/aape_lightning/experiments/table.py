"""``aape table``: every method on every dataset and seed, in one process, printed as one table.

Each run's result is written to ``<output>/<dataset>/<method>/seed<k>/result.json`` as soon as it
exists, keyed by its content: the run's arguments, the bytes of every config file they name, and
the package's own source. A second call reuses the runs whose key is unchanged, so an interrupted
table resumes and finished results are never lost or recomputed, while an edited config or a
changed method never serves a stale result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from aape_lightning.errors import TableError

log = logging.getLogger(__name__)


def run_one(args: list[str]) -> dict[str, float]:
    """fit (when the head has anything to train), then test; returns the test accuracies."""
    from aape_lightning.cli import lightning_main

    cli = lightning_main(args, run=False)
    if cli.model.trains:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return dict(cli.model.test_results)


def source_digest() -> str:
    """Hash of the installed package's code and assets: a changed method invalidates finished runs."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".pt", ".json") and p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_key(args: list[str], source: str) -> str:
    """Content key of one run: its arguments, the config files they name (parsed: comments do not count), the source."""
    digest = hashlib.sha256(json.dumps(args).encode() + source.encode())
    for flag, value in zip(args, args[1:]):
        if flag == "--config" and Path(value).is_file():
            digest.update(json.dumps(yaml.safe_load(Path(value).read_text()), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return mean, std


def format_table(results: dict[str, dict[str, list[dict[str, float]]]], seeds: list[int]) -> str:
    """Markdown: a row per method, base / new / H (mean ± std over seeds) per dataset, then the means.

    The last columns average the datasets: base, new, H with the std over seeds of each seed's
    mean H, and, for heads that report it, new-class accuracy with h(x) shuffled (the shuffle test).
    """
    datasets = sorted({d for per in results.values() for d in per})
    metrics = ["base", "new", "H"]
    header = ("| method | " + " | ".join(f"{d} {m}" for d in datasets for m in metrics)
              + " | mean base | mean new | mean H | mean new, h shuffled |")
    lines = [f"seeds: {seeds}; accuracy in %, mean ± std over seeds", "", header,
             "|" + "---|" * (1 + 3 * len(datasets) + 4)]
    for method, per in results.items():
        cells, means = [], {m: [] for m in [*metrics, "new_shuffled"]}
        for dataset in datasets:
            runs = per.get(dataset, [])
            for m in means:
                vals = [r[m] for r in runs if m in r]
                if vals:
                    mean, std = _mean_std(vals)
                    means[m].append(mean)
                    if m in metrics:
                        cells.append(f"{mean:.2f} ± {std:.2f}")
                elif m in metrics:
                    cells.append("—")
        complete = {m: len(v) == len(datasets) for m, v in means.items()}
        cells += [f"{sum(means[m]) / len(datasets):.2f}" if complete[m] else "—" for m in ("base", "new")]
        per_seed_h = [[r["H"] for r in per.get(d, []) if "H" in r] for d in datasets]
        if complete["H"] and len({len(h) for h in per_seed_h}) == 1:
            mean_h, std_h = _mean_std([sum(col) / len(col) for col in zip(*per_seed_h)])
            cells.append(f"{mean_h:.2f} ± {std_h:.2f}")
        else:
            cells.append("—")
        cells.append(f"{sum(means['new_shuffled']) / len(datasets):.2f}" if complete["new_shuffled"] else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_table(
    methods: dict[str, str | list[str]],
    base: list[str],
    datasets: dict[str, list[str]],
    seeds: list[int],
    output: str,
    extra_args: list[str],
    only: list[str] | None = None,
) -> str:
    unknown = sorted(set(only or []) - set(methods))
    if unknown:
        raise TableError(f"unknown method(s) {unknown}; known: {sorted(methods)}")
    # a method is a config file, or [config file, extra args...] (e.g. an ablation's override)
    chosen = {k: ([v] if isinstance(v, str) else list(v)) for k, v in methods.items() if not only or k in only}
    for name, path in [*((k, v[0]) for k, v in chosen.items()), *(("base", b) for b in base)]:
        if not Path(path).is_file():
            raise TableError(f"method {name!r}: config file {path} does not exist (paths are relative to {os.getcwd()})")
    results: dict[str, dict[str, list[dict[str, float]]]] = {m: {} for m in chosen}
    source = source_digest()
    for method, (method_config, *method_args) in chosen.items():
        for dataset, dataset_args in datasets.items():
            for seed in seeds:
                run_dir = Path(output) / dataset / method / f"seed{seed}"
                args = [a for c in [*base, method_config] for a in ("--config", c)]
                args += [*method_args, *dataset_args, "--seed_everything", str(seed), "--data.seed", str(seed),
                         "--trainer.default_root_dir", str(run_dir), *extra_args]
                key = run_key(args, source)
                record = run_dir / "result.json"
                if record.is_file() and json.loads(record.read_text()).get("key") == key:
                    result = json.loads(record.read_text())["test"]
                    log.info("reusing %s", record)
                else:
                    log.info("running %s on %s, seed %d", method, dataset, seed)
                    result = run_one(args)
                    run_dir.mkdir(parents=True, exist_ok=True)
                    tmp = record.with_suffix(".tmp")
                    tmp.write_text(json.dumps({"key": key, "args": args, "test": result}, indent=1))
                    tmp.replace(record)
                results[method].setdefault(dataset, []).append(result)
    table = format_table(results, seeds)
    Path(output).mkdir(parents=True, exist_ok=True)
    (Path(output) / "table.md").write_text(table + "\n")
    return table


def table_parser() -> ArgumentParser:
    """The parser of ``aape table`` and of its YAML files (configs/table/*.yaml)."""
    parser = ArgumentParser(prog="aape table", description=__doc__)
    parser.add_argument("--config", action="config", help="a table YAML (e.g. configs/table/demo.yaml)")
    parser.add_argument(
        "--methods", type=dict[str, str | list[str]], required=True,
        help="method name -> config file, or [config file, extra args...]",
    )
    parser.add_argument("--base", type=list[str], default=[], help="config files stacked before each method's")
    parser.add_argument("--datasets", type=dict[str, list[str]], required=True, help="dataset name -> extra args")
    parser.add_argument("--seeds", type=list[int], default=[1, 2, 3])
    parser.add_argument("--output", type=str, default="runs/table")
    parser.add_argument("--extra_args", type=list[str], default=[], help="arguments added to every run")
    parser.add_argument("--only", type=list[str] | None, default=None, help="run only these methods")
    return parser


def table_main(argv: list[str] | None = None) -> int:
    cfg = table_parser().parse_args(argv)
    table = run_table(cfg.methods, cfg.base, cfg.datasets, cfg.seeds, cfg.output, cfg.extra_args, cfg.only)
    print(table)
    return 0
