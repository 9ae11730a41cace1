"""The inference-cost table: per method, parameters trained and used at inference, GFLOPs per image, images/s
and training time.

Every method is built from its config exactly as the table runs it, fitted for one epoch (timed),
then measured on one batch of images, from pixels to logits: FLOPs counted by
``torch.utils.flop_counter`` (not by hand), and images/s timed side by side in one process, the
methods taking turns on the same batch so that machine load hits all alike. The backbone is, by
default, ViT-B/16's architecture with random weights: the cost does not depend on the weights, so
no download is needed; ``--backbone`` measures a real CLIP instead. ``cost.architecture`` may list
several, comma-separated, to put ViT-B/16 as clip-anytorch, OpenCLIP and Hugging Face build it
side by side (one row per method and architecture).

Two parameter counts: those the optimiser trains, and those the inference forward uses (found in
its autograd graph): AAPE trains its aggregator but keeps only h and g at inference, which is what
the paper's 82k counts.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

from aape_lightning.backbones import build_tiny_clip
from aape_lightning.backbones.random_families import HF_VIT_B16, build_random_hf, build_random_open_clip
from aape_lightning.errors import TableError
from aape_lightning.experiments.progress import Progress
from aape_lightning.experiments.table_format import grid, published_grid
from aape_lightning.lightning_cli.aape_cli import lightning_main

if TYPE_CHECKING:
    from aape_lightning.experiments.table_spec import TableSpec

log = logging.getLogger(__name__)

# Architectures measured with random weights (benchmarks/run.py uses the same table).
RANDOM_ARCHITECTURES: dict[str, dict[str, int]] = {
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     context_length=77, transformer_width=512, transformer_heads=8, transformer_layers=12),
}  # fmt: skip
# The same architecture in the other libraries, random weights, written in their users' layouts
RANDOM_FAMILIES: dict[str, dict[str, str]] = {
    "open_clip:ViT-B-16": {"scheme": "open_clip", "config": "ViT-B-16"},
    "hf:clip-vit-base-patch16": {"scheme": "hf", "config": "clip"},
    "hf:siglip-base-patch16-224": {"scheme": "hf", "config": "siglip"},
}
COLUMNS = ("trained parameters", "parameters used at inference", "GFLOPs / image", "images / s", "train s / epoch")
DIGITS = {"trained parameters": 0, "parameters used at inference": 0, "GFLOPs / image": 3, "images / s": 1,
          "train s / epoch": 2}  # fmt: skip
# per method in the CSV, for experiments/estimate.py (see flop_terms)
FLOP_TERMS = ("classes", "image_gflops", "class_gflops_per_image", "class_gflops_per_forward")
LOWER_BETTER = frozenset({"trained parameters", "parameters used at inference", "GFLOPs / image", "train s / epoch"})


class EpochTimer(Callback):
    """Wall time of each training epoch (the loop only: no set-up, no validation)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self._start)


def random_backbone(architecture: str, folder: Path) -> str:
    """A backbone name for ``architecture`` with random weights (written once under ``folder``, reused)."""
    known = sorted([*RANDOM_ARCHITECTURES, *RANDOM_FAMILIES])
    if architecture not in known:
        raise TableError(f"cost.architecture {architecture!r} is not one of {known} (comma-separated for several)")
    safe = architecture.replace("/", "-").replace(":", "_")
    if architecture in RANDOM_ARCHITECTURES:
        path = folder / f"random_{safe}.pt"
        return str(path if path.is_file() else build_tiny_clip(path, seed=0, **RANDOM_ARCHITECTURES[architecture]))
    family, path = RANDOM_FAMILIES[architecture], folder / f"random_{safe}"
    if not path.is_dir():
        if family["scheme"] == "open_clip":
            build_random_open_clip(path, family["config"])
        else:
            build_random_hf(path, family["config"], [], **HF_VIT_B16[family["config"]])
    return f"{family['scheme']}:{path}"


def counted_gflops(forward) -> float:
    """GFLOPs of ``forward()``, counted by PyTorch.

    ``nn.MultiheadAttention``'s fused inference path (taken by batch-first towers such as OpenCLIP's)
    is an op the counter does not know, so it is switched off while counting: the same math, counted.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            forward()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / 1e9


def gflops_per_image(task, images: torch.Tensor, class_set: str) -> float:
    """FLOPs of one forward pass from pixels to logits, per image, in GFLOPs."""
    return counted_gflops(lambda: task(images, class_set)) / images.shape[0]


def flop_terms(task, images: torch.Tensor, class_set: str) -> dict[str, float]:
    """GFLOPs split into what scales with images and what scales with classes, for pricing other datasets.

    A forward over B images costs ``B * per_image + per_forward`` (exact op counts), so two batch sizes
    give both terms; the image tower's share of ``per_image`` is counted on its own. What is left beyond
    the image tower (the text tower, logits, the head) scales with the class count: CoOp's text tower runs
    once per forward over every class, CoCoOp's once per image over every class, zero-shot's and AAPE's
    class features are cached and leave the logits only.
    """
    small, large = images[:1], images
    if large.shape[0] <= small.shape[0]:
        raise TableError(f"cost.batch {large.shape[0]}: give at least 2 images to separate per-image from per-forward FLOPs")
    totals = [counted_gflops(lambda x=x: task(x, class_set)) for x in (small, large)]  # GFLOPs of each forward
    per_image = (totals[1] - totals[0]) / (large.shape[0] - small.shape[0])
    per_forward = totals[0] - small.shape[0] * per_image
    image = counted_gflops(lambda: task.backbone.encode_image(large)) / large.shape[0]
    classes = len(task.head.class_sets[class_set][0])
    return {"classes": classes, "image_gflops": image, "class_gflops_per_image": max(per_image - image, 0.0) / classes,
            "class_gflops_per_forward": max(per_forward, 0.0) / classes}


def trained_parameters(task) -> int:
    """Parameters the optimiser updates (``requires_grad``)."""
    return sum(p.numel() for p in task.parameters() if p.requires_grad)


def inference_parameters(task, images: torch.Tensor, class_set: str) -> int:
    """Trained parameters that the inference forward (eval mode, pixels to logits) depends on.

    Read from autograd: the trained parameters the logits' graph reaches. Training-only modules
    (AAPE's aggregator) are not reached; a parameter that is reached counts even where its
    gradient happens to be zero.
    """
    trained = [p for p in task.parameters() if p.requires_grad]
    if not trained:
        return 0
    was_training = task.training
    task.eval()
    try:
        with torch.enable_grad():
            logits = task(images, class_set)  # (B, K)
            if not logits.requires_grad:
                return 0
            grads = torch.autograd.grad(logits.sum(), trained, allow_unused=True)
    finally:
        task.train(was_training)
    return sum(p.numel() for p, g in zip(trained, grads) if g is not None)


def build_method(args: list[str], train: bool):
    """The task as the table builds it, fitted for the configured epochs when it trains; the epoch times."""
    cli = lightning_main(args, run=False)
    timer = EpochTimer()
    if train and cli.model.trains:
        cli.trainer.callbacks.append(timer)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)  # registers classes, loads prompts
    return cli.model.eval(), cli.datamodule, timer.times


def run_cost(spec: TableSpec) -> str:
    """Measure every method of ``spec`` on its first dataset and seed; writes ``<results>/<name>.md`` and ``.csv``."""
    opts = {"batch": 32, "repeats": 3, "architecture": "ViT-B/16", "train_epochs": 1, **spec.cost}
    chosen = spec.chosen()
    dataset, dataset_args = next(iter(spec.datasets.items()))
    output = Path(spec.output)
    output.mkdir(parents=True, exist_ok=True)
    architectures = [a.strip() for a in str(opts["architecture"]).split(",")]
    backbones = [spec.backbone] if spec.backbone else [random_backbone(a, output) for a in architectures]
    labels = [spec.backbone] if spec.backbone else architectures
    progress = Progress(len(chosen) * len(backbones))
    tasks, rows = {}, {}
    for backbone, label in zip(backbones, labels):
        for method, (config, *method_args) in chosen.items():
            row, root = (method, output / method) if len(backbones) == 1 else \
                (f"{method} ({label})", output / label.replace("/", "-").replace(":", "_") / method)  # fmt: skip
            args = [a for c in spec.base for a in ("--config", c)]
            args += [*dataset_args, "--config", config, *method_args, *spec.extra_args, *spec.user_args(),
                     "--model.backbone", backbone, "--seed_everything", str(spec.seeds[0]),
                     "--trainer.max_epochs", str(opts["train_epochs"]), "--trainer.limit_val_batches", "0",
                     "--trainer.limit_test_batches", "1", "--trainer.logger", "false",
                     "--trainer.enable_checkpointing", "false", "--trainer.default_root_dir", str(root),
                     "--trainer.inference_mode", "false"]  # its cached class features are reused under autograd
            progress.start(f"{row} (build, fit {opts['train_epochs']} epoch)")
            start = time.perf_counter()
            task, data, epochs = build_method(args, train=True)
            progress.finish(time.perf_counter() - start)
            res = task.backbone.image_resolution
            images = torch.randn(int(opts["batch"]), 3, res, res, generator=torch.Generator().manual_seed(0))
            tasks[row] = (task, data.test_sets[0], images.to(task.device))
            rows[row] = {"trained parameters": [float(trained_parameters(task))], "train s / epoch": epochs}
    first = next(iter(tasks.values()))[0]
    times: dict[str, list[float]] = {m: [] for m in tasks}
    terms: dict[str, dict[str, float]] = {}
    for method, (task, class_set, images) in tasks.items():
        rows[method]["parameters used at inference"] = [float(inference_parameters(task, images[:2], class_set))]
    with torch.no_grad():
        for method, (task, class_set, images) in tasks.items():
            task(images[:2], class_set)  # warm-up: class features cached, allocator primed
            rows[method]["GFLOPs / image"] = [gflops_per_image(task, images, class_set)]
            terms[method] = flop_terms(task, images, class_set)
        for _ in range(int(opts["repeats"])):  # the methods take turns on the same batch
            for method, (task, class_set, images) in tasks.items():
                start = time.perf_counter()
                task(images, class_set)
                times[method].append(time.perf_counter() - start)
    for method in tasks:
        rows[method]["images / s"] = [int(opts["batch"]) / t for t in times[method]]
    table = cost_markdown(spec, rows, dataset, ", ".join(Path(b.split(":", 1)[-1]).name for b in backbones), opts, first)
    _write_cost_csv(spec, rows, times, terms)
    (spec.results_dir() / f"{spec.name or 'cost'}.md").write_text(table + "\n", encoding="utf-8")
    return table


def cost_markdown(spec: TableSpec, rows, dataset: str, backbone: str, opts: dict, task) -> str:
    device = "GPU " + torch.cuda.get_device_name(task.device) if task.device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} thread(s)"  # fmt: skip
    arch = "" if spec.backbone else f"{opts['architecture']} architecture, random weights "
    lines = [spec.title] if spec.title else []
    lines += [f"backbone {arch}({backbone}); {dataset}; batch of {opts['batch']} images, pixels to logits; "
              f"{device}; images / s: mean ± std over {opts['repeats']} turns; train s / epoch: "
              f"{opts['train_epochs']} epoch(s); best per column in bold", ""]
    lines += grid(list(COLUMNS), rows, LOWER_BETTER, DIGITS)
    if spec.published:
        extra = [c for c in dict.fromkeys(k for v in spec.published.values() for k in v) if c not in COLUMNS]
        lines += ["", *published_grid([*COLUMNS, *extra], spec.published, spec.published_note)]
    return "\n".join(lines)


def _write_cost_csv(spec: TableSpec, rows, times, terms) -> None:
    import csv

    out = spec.results_dir()
    out.mkdir(parents=True, exist_ok=True)
    name = spec.name or "cost"
    with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "trained_parameters", "inference_parameters", "gflops_per_image", "images_per_s",
                         "train_s_per_epoch", "batch_seconds", *FLOP_TERMS])  # fmt: skip
        for method, row in rows.items():
            writer.writerow([method, int(row["trained parameters"][0]), int(row["parameters used at inference"][0]),
                             f"{row['GFLOPs / image'][0]:.6g}",
                             f"{statistics.mean(row['images / s']):.3f}",
                             f"{statistics.mean(row['train s / epoch']):.3f}" if row["train s / epoch"] else "",
                             " ".join(f"{t:.4f}" for t in times[method]),
                             *(f"{terms[method][k]:.6g}" for k in FLOP_TERMS)])  # fmt: skip
