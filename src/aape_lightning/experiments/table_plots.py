"""PNG plots of a table with matplotlib: grouped bars per dataset, curves with error bars."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aape_lightning.experiments.table_format import mean_std, rows_for

if TYPE_CHECKING:
    from aape_lightning.experiments.table_spec import Outcome, TableSpec


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def style(i: int) -> dict:
    """Bar colour and hatch of the i-th method: 20 distinct colours, then the same with a hatch."""
    plt = _pyplot()
    return {"color": plt.get_cmap("tab20")(i % 20), "hatch": ("", "//", "..", "xx")[(i // 20) % 4]}


def grouped_bars(groups: list[str], rows: dict[str, dict[str, list[float]]], columns: list[str], ylabel: str,
                 title: str, path: Path) -> Path:  # fmt: skip
    """One group of bars per column (dataset), one bar per row (method), std over seeds as error bars."""
    plt = _pyplot()
    labels = list(rows)
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 + len(groups) * len(labels) * 0.22), 4))
    for i, label in enumerate(labels):
        stats = [mean_std(rows[label][c]) if rows[label].get(c) else (float("nan"), 0.0) for c in columns]
        xs = [g + (i - (len(labels) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [m for m, _ in stats], width, yerr=[s for _, s in stats], label=label, capsize=2, **style(i))
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="x-small", ncol=max(1, len(labels) // 12), bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(lines: dict[str, list[tuple[float, list[float]]]], xlabel: str, ylabel: str, title: str, path: Path,
           log_x: bool = False) -> Path:  # fmt: skip
    """One line per entry, mean ± std over seeds at each x."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, points) in enumerate(lines.items()):
        points = sorted((x, mean_std(v)) for x, v in points if v)
        if points:
            ax.errorbar([x for x, _ in points], [m for _, (m, _) in points], yerr=[s for _, (_, s) in points],
                        marker="o", capsize=3, label=label, color=style(i)["color"])
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_table(spec: TableSpec, outcomes: list[Outcome], stem: Path) -> list[Path]:
    """The plots of one table, written as ``<stem>_<what>.png``; returns their paths."""
    columns, rows = rows_for(spec, outcomes)
    name, written = stem.name, []
    if spec.layout == "base2new":
        h_cols = [c for c in columns if c.endswith(" H") and not c.startswith("mean new")]
        groups = [c.removesuffix(" H") for c in h_cols]
        written.append(grouped_bars(groups, rows, h_cols, "H (%)", f"{name}: H per dataset", Path(f"{stem}_H.png")))
    elif spec.layout == "chain":
        written.append(grouped_bars(columns, rows, columns, "accuracy (%)", f"{name}: accuracy per test set",
                                    Path(f"{stem}_accuracy.png")))  # fmt: skip
    elif spec.layout == "sweep":
        xs = {c: float(v) for c, v in zip(columns, spec.sweep)}
        lines = {label: [(xs[c], row[c]) for c in columns] for label, row in rows.items()}
        written.append(curves(lines, spec.sweep_name, f"mean {spec.metric} (%)", f"{name}: {spec.metric} against "
                              f"{spec.sweep_name}", Path(f"{stem}_{spec.sweep_name}.png"), log_x=True))  # fmt: skip
    for curve, points in (spec.curves or {}).items():
        col = f"mean {spec.metric}"
        line = {f"{spec.metric}": [(x, rows[m][col]) for m, x in points.items() if m in rows]}
        written.append(curves(line, curve, f"mean {spec.metric} (%)", f"{name}: {spec.metric} against {curve}",
                              Path(f"{stem}_{curve}.png")))  # fmt: skip
    return written
