"""Markdown of a table's results: mean ± std over seeds per cell, best per column in bold.

Each layout turns the runs into rows (a method, or a method at a sweep value) of columns holding
one value per seed; a "mean" column averages the datasets (or targets) within each seed first, so
its std is over seeds. Published numbers, when a spec gives them, are a separate table below,
never mixed with ours.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aape_lightning.experiments.table_spec import Outcome, TableSpec

Rows = dict[str, dict[str, list[float]]]  # row label -> column -> one value per seed


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def grid(columns: list[str], rows: Rows, lower_better: frozenset[str] = frozenset(),
         digits: int | dict[str, int] = 2) -> list[str]:  # fmt: skip
    """Markdown lines; the best mean of each column (among two or more rows) in bold; ``digits`` per column."""
    places = {c: digits.get(c, 2) if isinstance(digits, dict) else digits for c in columns}
    best = {}
    for col in columns:
        means = [mean_std(r[col])[0] for r in rows.values() if r.get(col)]
        if len(means) > 1:
            best[col] = min(means) if col in lower_better else max(means)
    lines = ["| method | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for label, row in rows.items():
        cells = []
        for col in columns:
            if not row.get(col):
                cells.append("—")
                continue
            mean, std = mean_std(row[col])
            n = places[col]
            text = f"{mean:,.{n}f} ± {std:,.{n}f}" if len(row[col]) > 1 else f"{mean:,.{n}f}"
            cells.append(f"**{text}**" if col in best and math.isclose(mean, best[col], abs_tol=10**-n / 2) else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def published_grid(columns: list[str], published: dict[str, dict[str, float]], note: str) -> list[str]:
    """The published numbers in their own table, each row labelled with ``note``."""
    lines = [f"Published numbers ({note}; from the papers, not measured here):", "",
             "| method | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for label, values in published.items():
        cells = [f"{values[c]:,.2f}".removesuffix(".00") if c in values else "—" for c in columns]
        lines.append(f"| {label} ({note}) | " + " | ".join(cells) + " |")
    return lines


def _per_seed(outcomes: list[Outcome]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """row label -> dataset -> seed -> metrics, of the runs that finished."""
    table: dict = defaultdict(lambda: defaultdict(dict))
    for o in outcomes:
        table[o.run.label].setdefault(o.run.dataset, {})
        if not o.error:
            table[o.run.label][o.run.dataset][o.run.seed] = o.metrics
    return table


def _mean_over(per_dataset: dict[str, dict[int, dict[str, float]]], names: list[str], metric_of) -> list[float]:
    """Per seed, the mean over ``names`` of ``metric_of(name, metrics)``, for seeds where every one has it."""
    seeds = sorted({s for per in per_dataset.values() for s in per})
    values = []
    for seed in seeds:
        got = [metric_of(n, per_dataset.get(d, {}).get(seed, {})) for d, n in names]
        if got and all(v is not None for v in got):
            values.append(sum(got) / len(got))
    return values


def base2new_rows(per: dict[str, dict[str, dict[int, dict[str, float]]]], datasets: list[str]) -> tuple[list[str], Rows]:
    """Columns base / new / H per dataset, then their means over datasets and the shuffle test's new."""
    columns = [f"{d} {m}" for d in datasets for m in ("base", "new", "H")]
    means = {"mean base": "base", "mean new": "new", "mean H": "H", "mean new, h shuffled": "new_shuffled"}
    rows: Rows = {}
    for label, by_dataset in per.items():
        row = {f"{d} {m}": [r[m] for _, r in sorted(by_dataset.get(d, {}).items()) if m in r]
               for d in datasets for m in ("base", "new", "H")}  # fmt: skip
        for col, m in means.items():
            row[col] = _mean_over(by_dataset, [(d, m) for d in datasets], lambda name, r: r.get(name))
        rows[label] = row
    return columns + list(means), rows


def chain_rows(per, datasets: list[str], tests: dict[str, list[str]]) -> tuple[list[str], Rows]:
    """A column per test target (prefixed by the training dataset when there are several), then the targets' mean."""
    targets = [t for t, args in tests.items() if args]
    tests = {t: tests[t] for t in [*(t for t in tests if not tests[t]), *targets]}  # the source first
    columns, rows = [], {}
    for d in datasets:
        prefix = f"{d} → " if len(datasets) > 1 else ""
        columns += [f"{prefix}{t}" for t in tests] + [f"{prefix}mean (targets)"]
    for label, by_dataset in per.items():
        row = {}
        for d in datasets:
            prefix = f"{d} → " if len(datasets) > 1 else ""
            seeds = by_dataset.get(d, {})
            for t in tests:
                row[f"{prefix}{t}"] = [r[t] for _, r in sorted(seeds.items()) if t in r]
            row[f"{prefix}mean (targets)"] = _mean_over({d: seeds}, [(d, t) for t in targets], lambda n, r: r.get(n))
        rows[label] = row
    return columns, rows


def sweep_rows(outcomes: list[Outcome], spec: TableSpec) -> tuple[list[str], Rows]:
    """Rows are methods, columns the sweep's values: the mean over datasets of ``spec.metric`` per seed."""
    per: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))  # method -> variant -> dataset -> seed
    for o in outcomes:
        if not o.error:
            per[o.run.method][o.run.variant][o.run.dataset][o.run.seed] = o.metrics
    columns = [f"{spec.sweep_name} {v}" for v in spec.sweep]
    rows: Rows = {}
    for method in dict.fromkeys(o.run.method for o in outcomes):
        rows[method] = {f"{spec.sweep_name} {v}": _mean_over(per[method][str(v)], [(d, spec.metric) for d in spec.datasets],
                                                                lambda n, r: r.get(n)) for v in spec.sweep}  # fmt: skip
    return columns, rows


def rows_for(spec: TableSpec, outcomes: list[Outcome]) -> tuple[list[str], Rows]:
    datasets = list(spec.datasets)
    if spec.layout == "chain":
        return chain_rows(_per_seed(outcomes), datasets, spec.tests or {})
    if spec.layout == "sweep":
        return sweep_rows(outcomes, spec)
    return base2new_rows(_per_seed(outcomes), datasets)


def markdown_for(spec: TableSpec, outcomes: list[Outcome]) -> str:
    columns, rows = rows_for(spec, outcomes)
    what = {"sweep": f"mean {spec.metric} over {', '.join(spec.datasets)}", "chain": "test accuracy"}.get(
        spec.layout, "accuracy")
    lines = [spec.title] if spec.title else []
    lines.append(f"seeds: {list(spec.seeds)}; {what} in %, mean ± std over seeds; best per column in bold")
    failed = sum(1 for o in outcomes if o.error)
    if failed:
        lines.append(f"{failed} run(s) failed and are missing (see the CSV's error column)")
    lines += ["", *grid(columns, rows)]
    if spec.published:
        lines += ["", *published_grid(columns, spec.published, spec.published_note)]
    return "\n".join(lines)


def format_table(results: dict[str, dict[str, list[dict[str, float]]]], seeds: list[int]) -> str:
    """The base-to-new markdown of ``{method: {dataset: [metrics per seed]}}`` (seeds in the given order)."""
    per = {m: {d: dict(zip(seeds, runs)) for d, runs in by_d.items()} for m, by_d in results.items()}
    datasets = sorted({d for by_d in results.values() for d in by_d})
    columns, rows = base2new_rows(per, datasets)
    return "\n".join([f"seeds: {seeds}; accuracy in %, mean ± std over seeds", "", *grid(columns, rows)])
