"""An estimate of the compute each of the paper's tables needs, from a measured cost table.

    python -m aape_lightning.experiments.estimate [--cost results/demo_cost.csv] [--out results/table_hours_estimate.md]

For every run of each table spec (configs/table/<table>.yaml, expanded exactly as ``aape table``
expands it: methods x datasets x seeds x sweep values) it counts the images the run trains on
(classes trained x shots x epochs, from the stacked configs) and tests (CoOp's test-set sizes,
``DATASET_SIZES``), and prices them with the cost table's per-method times: train seconds per
image (``train_s_per_epoch`` / the images of its epoch) and test seconds per image (1 / images/s).
A method the cost table did not measure takes the row of the first measured method with the same
head class. It is an estimate: data loading, validation and start-up are left out, and the hours
are on the device that measured the cost table (its markdown says which).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from pathlib import Path

import yaml

from aape_lightning.experiments.table import TableSpec, table_parser

# CoOp's splits (its DATASETS.md / paper): classes and test images per dataset (facts, not measured here).
DATASET_SIZES: dict[str, tuple[int, int]] = {
    "ImageNet": (1000, 50000), "Caltech101": (100, 2465), "OxfordPets": (37, 3669), "StanfordCars": (196, 8041),
    "Flowers102": (102, 2463), "Food101": (101, 30300), "FGVCAircraft": (100, 3333), "SUN397": (397, 19850),
    "DTD": (47, 1692), "EuroSAT": (10, 8100), "UCF101": (101, 3783), "ImageNetV2": (1000, 10000),
    "ImageNetSketch": (1000, 50889), "ImageNetA": (200, 7500), "ImageNetR": (200, 30000),
}  # fmt: skip
TABLES = ("base2new", "dg", "cross", "ablations", "scaling_shots", "scaling_prompts")


def stacked(args: list[str]) -> dict:
    """What the estimate needs from a run's arguments: the ``--config`` files merged in order, then ``--a.b v`` flags."""
    found: dict = {}

    def walk(node, prefix=""):
        for key, value in (node or {}).items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}." if key != "init_args" else prefix)
            else:
                found[name] = value

    for flag, value in zip(args, args[1:]):
        if flag == "--config" and Path(value).is_file():
            walk(yaml.safe_load(Path(value).read_text(encoding="utf-8")))
        elif flag.startswith("--") and flag != "--config":
            found[flag[2:].replace(".init_args", "")] = value
    return found


def head_class(config: str) -> str | None:
    return stacked(["--config", config]).get("model.head.class_path")


def epoch_images(cost_spec: TableSpec, md: str) -> int:
    """Images in one training epoch of the cost table: said in its title (demo), else its dataset's classes x shots."""
    said = re.search(r"(\d+) images per epoch", md)
    if said:
        return int(said.group(1))
    run = cost_spec.runs()[0]
    cfg = stacked(run.args)
    classes = DATASET_SIZES[run.dataset][0]
    trained = classes if cfg.get("data.protocol") in ("all", "cross") else math.ceil(classes / 2)
    return trained * int(cfg.get("data.shots", 16))


def read_cost(path: Path, cost_spec: TableSpec) -> tuple[dict[str, dict[str, float]], str, int]:
    """Per method: train and test seconds per image; the device line and images per epoch of the cost table."""
    md = path.with_suffix(".md").read_text(encoding="utf-8")
    per_epoch = epoch_images(cost_spec, md)
    device = re.search(r"pixels to logits; ([^;]+);", md).group(1)
    rows = {}
    for row in csv.DictReader(path.open(encoding="utf-8")):
        train = float(row["train_s_per_epoch"]) / per_epoch if row["train_s_per_epoch"] else 0.0
        rows[row["method"]] = {"train": train, "test": 1.0 / float(row["images_per_s"])}
    return rows, device, per_epoch


def estimate_table(spec: TableSpec, cost: dict[str, dict[str, float]], cost_spec: TableSpec) -> dict[str, float]:
    """Runs, trained images, tested images and estimated seconds of one table."""
    by_head = {}
    for method, value in cost_spec.methods.items():
        by_head.setdefault(head_class(value if isinstance(value, str) else value[0]), method)
    total = {"runs": 0, "train images": 0.0, "test images": 0.0, "seconds": 0.0}
    for run in spec.runs():
        config = spec.methods[run.method]
        row = cost.get(run.method) or cost[by_head[head_class(config if isinstance(config, str) else config[0])]]
        cfg = stacked(run.args)
        classes, test_images = DATASET_SIZES[run.dataset]
        trained = classes if cfg.get("data.protocol") in ("all", "cross") else math.ceil(classes / 2)
        train = trained * int(cfg.get("data.shots", 16)) * int(cfg.get("trainer.max_epochs", 200)) if row["train"] else 0
        tests = [DATASET_SIZES[t][1] if t in DATASET_SIZES else test_images for t in (spec.tests or {run.dataset: []})]
        total["runs"] += 1
        total["train images"] += train
        total["test images"] += sum(tests)
        total["seconds"] += train * row["train"] + sum(tests) * row["test"]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cost", type=Path, default=Path("results/demo_cost.csv"), help="a cost table's CSV (.md beside it)")
    parser.add_argument("--cost_spec", type=Path, default=Path("configs/table/demo_cost.yaml"))
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--out", type=Path, default=Path("results/table_hours_estimate.md"))
    args = parser.parse_args(argv)

    def spec_of(path: Path) -> TableSpec:
        cfg = table_parser().parse_args(["--config", str(path)]).as_dict()
        return TableSpec(**{k: v for k, v in cfg.items() if k in TableSpec.__dataclass_fields__ and k != "slurm"})

    cost_spec = spec_of(args.cost_spec)
    cost, device, per_epoch = read_cost(args.cost, cost_spec)
    lines = [f"Estimated compute per table (an estimate, not a measurement): images trained and tested by every run, "
             f"priced with the per-image times of `{args.cost}` (measured on {device}; {per_epoch} images per epoch).",
             "Data loading, validation and start-up are not counted; hours are on that device "
             "(`python -m aape_lightning.experiments.estimate --cost <a GPU cost table>.csv` prices them on a GPU).", "",
             "| table | runs | train images (all epochs) | test images | estimated hours | hours per run |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name in args.tables:
        total = estimate_table(spec_of(Path("configs/table") / f"{name}.yaml"), cost, cost_spec)
        hours = total["seconds"] / 3600
        lines.append(f"| {name} | {total['runs']} | {total['train images']:,.0f} | {total['test images']:,.0f} | "
                     f"{hours:,.0f} | {hours / total['runs']:,.1f} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
