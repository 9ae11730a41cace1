"""An estimate of the compute each of the paper's tables needs, from a measured cost table.

    python -m aape_lightning.experiments.estimate [--cost results/demo_cost.csv] [--out results/table_hours_estimate.md]

For every run of each table spec (configs/table/<table>.yaml, expanded exactly as ``aape table``
expands it: methods x datasets x seeds x sweep values) it counts the images the run trains on
(classes trained x shots x epochs, from the stacked configs) and tests (CoOp's test-set sizes,
``DATASET_SIZES``), and prices them in FLOPs with the cost table's per-method split (image tower per
image; the rest per class, per image or per forward), so that a text tower run over every class
grows with the dataset's classes, not with the cost table's. Hours: those FLOPs at the rate the
cost table's device sustained, and at ``--gpu_tflops`` (an assumed sustained rate) when given.
A method the cost table did not measure takes the row of the first measured method with the same
head class. It is an estimate: data loading, validation and start-up are left out.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.errors import TableError
from aape_lightning.experiments.cost import FLOP_TERMS
from aape_lightning.experiments.table import TableSpec, table_parser

# CoOp's splits (its DATASETS.md / paper): classes and test images per dataset (facts, not measured here).
DATASET_SIZES: dict[str, tuple[int, int]] = {
    "ImageNet": (1000, 50000), "Caltech101": (100, 2465), "OxfordPets": (37, 3669), "StanfordCars": (196, 8041),
    "Flowers102": (102, 2463), "Food101": (101, 30300), "FGVCAircraft": (100, 3333), "SUN397": (397, 19850),
    "DTD": (47, 1692), "EuroSAT": (10, 8100), "UCF101": (101, 3783), "ImageNetV2": (1000, 10000),
    "ImageNetSketch": (1000, 50889), "ImageNetA": (200, 7500), "ImageNetR": (200, 30000),
}  # fmt: skip
# what a run's data block falls back to when its configs leave a key out: the DataModule's own defaults
DATA_DEFAULTS = {k: p.default for k, p in inspect.signature(ClassificationDataModule).parameters.items()
                 if p.default is not inspect.Parameter.empty}  # fmt: skip
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


def data_arg(cfg: dict, name: str):
    """A ``data.<name>`` value of a stacked config, else the DataModule's default."""
    return cfg.get(f"data.{name}", DATA_DEFAULTS[name])


def trained_classes(cfg: dict, classes: int) -> int:
    """Classes a run trains on: all of them, or the base half (ceil, data/classification/protocols.py)."""
    return classes if data_arg(cfg, "protocol") in ("all", "cross") else math.ceil(classes / 2)


def head_class(config: str) -> str | None:
    return stacked(["--config", config]).get("model.head.class_path")


def epoch_images(cost_spec: TableSpec, md: str) -> int:
    """Images in one training epoch of the cost table: said in its title (demo), else its dataset's classes x shots."""
    said = re.search(r"(\d+) images per epoch", md)
    if said:
        return int(said.group(1))
    run = cost_spec.runs()[0]
    cfg = stacked(run.args)
    return trained_classes(cfg, DATASET_SIZES[run.dataset][0]) * int(data_arg(cfg, "shots"))


@dataclass(frozen=True)
class MethodCost:
    """One method's row of a cost table: its GFLOPs split (experiments/cost.py::flop_terms) and its measured times."""

    classes: int  # of the class set it was measured on
    image: float  # image tower, per image
    per_image: float  # per image and class (logits, CoCoOp's per-image text tower, ...)
    per_forward: float  # per forward and class (CoOp's text tower over every class)
    trains: bool
    train_s_per_epoch: float | None
    gflops: float  # per image as measured (its batch, its classes)
    images_per_s: float

    def train_gflops(self, images: int, classes: int, batch: int) -> float:
        """One epoch over ``images``: the frozen image tower forward only, the rest forward and backward (3x)."""
        steps = math.ceil(images / batch)
        return images * self.image + 3 * classes * (images * self.per_image + steps * self.per_forward)

    def test_gflops(self, sets: list[tuple[int, int]], batch: int) -> tuple[float, float]:
        """(image tower, the rest) of testing class sets given as (images, classes), in batches of ``batch``."""
        tower = sum(n for n, _ in sets) * self.image
        rest = sum(k * (n * self.per_image + math.ceil(n / batch) * self.per_forward) for n, k in sets)
        return tower, rest


def test_sets(protocol: str | None, images: int, classes: int) -> list[tuple[int, int]]:
    """(images, classes) of each class set a run tests: base-to-new tests base and new apart (images
    split in proportion to classes, base = ceil(n / 2) as in data/classification/protocols.py)."""
    if protocol != "base2new":
        return [(images, classes)]
    base = math.ceil(classes / 2)
    return [(round(images * base / classes), base), (images - round(images * base / classes), classes - base)]


def read_cost(path: Path, cost_spec: TableSpec) -> tuple[dict[str, MethodCost], str, int]:
    """Per method: its GFLOPs split and times; the device line and images per epoch of the cost table."""
    md = path.with_suffix(".md").read_text(encoding="utf-8")
    per_epoch = epoch_images(cost_spec, md)
    device = re.search(r"pixels to logits; ([^;]+);", md).group(1)
    rows = {}
    for row in csv.DictReader(path.open(encoding="utf-8")):
        missing = [k for k in FLOP_TERMS if not row.get(k)]
        if missing:
            raise TableError(f"{path}: no {', '.join(missing)} column (a cost table older than the FLOP split); "
                             f"rerun it: make reproduce-table TABLE=cost")  # fmt: skip
        rows[row["method"]] = MethodCost(
            classes=int(float(row["classes"])), image=float(row["image_gflops"]), per_image=float(row["class_gflops_per_image"]),
            per_forward=float(row["class_gflops_per_forward"]), trains=bool(row["train_s_per_epoch"]),
            train_s_per_epoch=float(row["train_s_per_epoch"]) if row["train_s_per_epoch"] else None,
            gflops=float(row["gflops_per_image"]), images_per_s=float(row["images_per_s"]))  # fmt: skip
    return rows, device, per_epoch


def measured_rate(cost: dict[str, MethodCost]) -> float:
    """GFLOP/s the cost table's device sustained at inference: the median over methods of GFLOPs x images/s."""
    return statistics.median(c.gflops * c.images_per_s for c in cost.values())


def estimate_table(spec: TableSpec, cost: dict[str, MethodCost], cost_spec: TableSpec) -> dict[str, float]:
    """Runs, images and GFLOPs of one table.

    The feature store encodes each test set once for every method and seed of the table (counted once);
    training images go through the image tower every epoch (fresh augmentation) or ``data.feature_views``
    times per run when views are stored.
    """
    by_head = {}
    for method, value in cost_spec.methods.items():
        by_head.setdefault(head_class(value if isinstance(value, str) else value[0]), method)
    total = {"runs": 0, "train images": 0.0, "test images": 0.0, "train gflops": 0.0, "test gflops": 0.0}
    encoded: set[str] = set()  # test sets the store already holds
    for run in spec.runs():
        config = spec.methods[run.method]
        head = head_class(config if isinstance(config, str) else config[0])
        if run.method not in cost and head not in by_head:
            raise TableError(f"table {spec.name or '?'}: method {run.method} ({head}) has no row in the cost table and "
                             f"no measured method shares its head; add it to the cost spec and rerun the cost table")  # fmt: skip
        row = cost.get(run.method) or cost[by_head[head]]
        cfg = stacked(run.args)
        classes = DATASET_SIZES[run.dataset][0]
        trained = trained_classes(cfg, classes)
        if row.trains:
            if "trainer.max_epochs" not in cfg:
                raise TableError(f"table {spec.name or '?'}, {run.what}: its configs set no trainer.max_epochs; "
                                 f"give the recipe's epochs in the spec's base configs")  # fmt: skip
            images, epochs = trained * int(data_arg(cfg, "shots")), int(cfg["trainer.max_epochs"])
            per_epoch = row.train_gflops(images, trained, int(data_arg(cfg, "batch_size")))
            views = int(data_arg(cfg, "feature_views") or 0)
            if views:  # the image tower runs for the stored views only
                per_epoch -= images * row.image
                total["train gflops"] += views * images * row.image
            total["train images"] += images * epochs
            total["train gflops"] += epochs * per_epoch
        for test in spec.tests or {run.dataset: []}:
            n, k = (DATASET_SIZES[test][1], DATASET_SIZES[test][0]) if test in DATASET_SIZES else \
                (DATASET_SIZES[run.dataset][1], classes)  # fmt: skip
            protocol = data_arg(cfg, "protocol") if test == run.dataset else "all"
            tower, rest = row.test_gflops(test_sets(protocol, n, k), int(data_arg(cfg, "eval_batch_size")))
            total["test images"] += n
            total["test gflops"] += rest + (0 if test in encoded else tower)
            encoded.add(test)
        total["runs"] += 1
    return total


def model_check(cost: dict[str, MethodCost], cost_spec: TableSpec, per_epoch: int, rate: float) -> list[str]:
    """The FLOP model against the cost table's own timed epoch, per method that trains (same device)."""
    lines = ["| method | train s / epoch, measured | from the FLOP model | measured / model |", "|---|---|---|---|"]
    for method, row in cost.items():
        if not row.trains or method not in cost_spec.methods:
            continue
        value = cost_spec.methods[method]
        args = [a for c in cost_spec.base for a in ("--config", c)]
        args += ["--config", value] if isinstance(value, str) else ["--config", value[0], *value[1:]]
        args += next(iter(cost_spec.datasets.values()))
        batch = int(data_arg(stacked(args), "batch_size"))
        model = row.train_gflops(per_epoch, row.classes, batch) / rate
        lines.append(f"| {method} | {row.train_s_per_epoch:.2f} | {model:.2f} | {row.train_s_per_epoch / model:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cost", type=Path, default=Path("results/demo_cost.csv"), help="a cost table's CSV (.md beside it)")
    parser.add_argument("--cost_spec", type=Path, default=Path("configs/table/demo_cost.yaml"))
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--gpu_tflops", type=float, default=None,
                        help="sustained TFLOP/s of the GPU to price on (an assumption: peak x utilisation)")
    parser.add_argument("--gpu", default="a GPU", help="what --gpu_tflops describes, for the file's text")
    parser.add_argument("--out", type=Path, default=Path("results/table_hours_estimate.md"))
    args = parser.parse_args(argv)
    if args.gpu_tflops is not None and not args.gpu_tflops > 0:
        parser.error(f"--gpu_tflops {args.gpu_tflops}: give the GPU's sustained TFLOP/s, a number > 0")

    def spec_of(path: Path) -> TableSpec:
        cfg = table_parser().parse_args(["--config", str(path)]).as_dict()
        return TableSpec(**{k: v for k, v in cfg.items() if k in TableSpec.__dataclass_fields__ and k != "slurm"})

    cost_spec = spec_of(args.cost_spec)
    cost, device, per_epoch = read_cost(args.cost, cost_spec)
    rate = measured_rate(cost)  # GFLOP/s
    gpu = f"GPU-hours at {args.gpu_tflops:g} TFLOP/s" if args.gpu_tflops else None
    lines = [f"Estimated compute per table (an estimate, not a measurement). Every run of each spec is counted from "
             f"its stacked configs (classes, shots, epochs, batch sizes; CoOp's test-set sizes) and priced in FLOPs "
             f"with the per-method FLOP split of `{args.cost}`: the image tower per image, the rest per class, per "
             f"image or per forward (`experiments/cost.py::flop_terms`); training counts the rest 3x (forward and "
             f"backward), and each test set's image tower once per table (the feature store).",
             f"Hours are those FLOPs at the {rate:,.0f} GFLOP/s the cost table's device ({device}) sustained at "
             f"inference" + (f", and at an assumed {args.gpu_tflops:g} TFLOP/s for {args.gpu} (an assumption, not "
                              f"a measurement: `make estimate GPU_TFLOPS=.. GPU=..` re-prices it)" if gpu else "") +
             ". Data loading, validation and start-up are not counted.", "",
             f"| table | runs | train images (all epochs) | test images | train PFLOP | test PFLOP | "
             f"{gpu + ' | per run | ' if gpu else ''}hours on the cost table's device |",
             "|---|---|---|---|---|---|" + ("---|---|" if gpu else "") + "---|"]  # fmt: skip
    for name in args.tables:
        total = estimate_table(spec_of(Path("configs/table") / f"{name}.yaml"), cost, cost_spec)
        gflops = total["train gflops"] + total["test gflops"]
        hours = f"{gflops / (args.gpu_tflops * 1e3) / 3600:,.1f} | {gflops / (args.gpu_tflops * 1e3) / 3600 / total['runs']:,.2f} | " if gpu else ""
        lines.append(f"| {name} | {total['runs']} | {total['train images']:,.0f} | {total['test images']:,.0f} | "
                     f"{total['train gflops'] / 1e6:,.0f} | {total['test gflops'] / 1e6:,.0f} | {hours}"
                     f"{gflops / rate / 3600:,.0f} |")  # fmt: skip
    lines += ["", f"The FLOP model checked against the cost table's own timed training epoch ({per_epoch} images, "
              f"same device, at {rate:,.0f} GFLOP/s):", "", *model_check(cost, cost_spec, per_epoch, rate)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
