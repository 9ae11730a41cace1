"""The ImageNet-sized dry run: AAPE base-to-new fit + test at 10, 100 and 1000 classes, with the demo CLIP.

    python benchmarks/scale.py [--classes 10 100 1000] [--epochs 1] [--out results/scale_dry_run.md]

For each size it builds a synthetic dataset in CoOp's layout (``split_zhou_Scale.json``, small
images, 16 train shots, a few val / test images per class) and a CuPL-format prompt bank with 50
prompts per class, then runs the package's own path (``aape fit`` + ``aape test`` through the
LightningCLI, the demo CLIP, AAPE as configs/demo/fewshot.yaml sets it, on the CPU or the GPU it finds)
in a fresh process per size, and records per stage (prompt encoding, fit, test) the wall time and
the peak resident memory (and peak CUDA memory on a GPU). The work grows linearly in classes x
prompts (encoding) and in images (fit, test): the 1000 / 100 ratios should be about 10.
Datasets are written once under ``runs/scale/`` and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

SHOTS, VAL, TEST, PROMPTS = 16, 1, 3, 50


def make_dataset(root: Path, classes: int, size: int = 32) -> Path:
    """CoOp layout: ``images/<class>/<n>.png`` (one colour per class, noise on top) and the split JSON; prompts.json."""
    from PIL import Image

    if (root / "split_zhou_Scale.json").is_file():
        return root
    rng = random.Random(classes)
    split: dict[str, list] = {"train": [], "val": [], "test": []}
    prompts = {}
    for label in range(classes):
        name = f"object {label:04d}"
        folder = root / "images" / f"c{label:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(rng.randrange(256) for _ in range(3))
        n = 0
        for part, count in (("train", SHOTS), ("val", VAL), ("test", TEST)):
            for _ in range(count):
                pixels = bytes(max(0, min(255, c + rng.randrange(-40, 41))) for _ in range(size * size) for c in colour)
                Image.frombytes("RGB", (size, size), pixels).save(folder / f"{n}.png")
                split[part].append([f"{folder.name}/{n}.png", label, name])
                n += 1
        prompts[name] = [f"a photo of {name}, described in the {j}th way." for j in range(PROMPTS)]
    (root / "prompts.json").write_text(json.dumps(prompts))
    (root / "split_zhou_Scale.json").write_text(json.dumps(split))
    return root


class PeakMemory:
    """Peak resident memory of this process while a stage runs (sampled every 10 ms from /proc), and peak CUDA memory."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.01)

    def __enter__(self) -> PeakMemory:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.peak, self.start = self.rss(), time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self.seconds = time.perf_counter() - self.start
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        self.cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0


def one_size(root: Path, epochs: int, run_dir: Path) -> dict:
    """fit + test at one size, in this process; per stage: seconds, peak RSS and peak CUDA bytes."""
    from aape_lightning.console import configure_output
    from aape_lightning.lightning_cli.aape_cli import lightning_main

    configure_output()
    args = ["--config", "configs/demo/fewshot.yaml", "--data.reader.class_path", "CoOpSplitReader",
            "--data.reader.init_args.root", str(root), "--trainer.max_epochs", str(epochs),
            "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
            "--trainer.limit_val_batches", "0", "--data.num_workers", "0"]  # fmt: skip
    cli = lightning_main(args, run=False)
    stages: dict[str, dict] = {}
    model, load_prompts = cli.model, cli.model._load_prompts

    def timed_prompts(sets):  # the task's own prompt encoding, measured as its own stage
        with PeakMemory() as m:
            load_prompts(sets)
        stages.setdefault("prompt encoding", {"s": 0.0, "rss": 0, "cuda": 0})
        stage = stages["prompt encoding"]
        stage["s"] += m.seconds
        stage["rss"], stage["cuda"] = max(stage["rss"], m.peak), max(stage["cuda"], m.cuda)

    model._load_prompts = timed_prompts
    with PeakMemory() as fit:
        cli.trainer.fit(model, datamodule=cli.datamodule)
    encode_s = stages.get("prompt encoding", {}).get("s", 0.0)
    stages["fit"] = {"s": fit.seconds - encode_s, "rss": fit.peak, "cuda": fit.cuda}
    with PeakMemory() as test:
        cli.trainer.test(model, datamodule=cli.datamodule, verbose=False)
    stages["test"] = {"s": test.seconds, "rss": test.peak, "cuda": test.cuda}
    return {"stages": stages, "results": model.test_results}


def markdown(rows: dict[int, dict], epochs: int, device: str) -> str:
    sizes = sorted(rows)
    order = ("prompt encoding", "fit", "test")
    lines = [f"Scale dry run: AAPE base-to-new fit ({epochs} epoch) + test with the demo CLIP; {device}",
             f"(`python benchmarks/scale.py`; {SHOTS} train shots, {VAL} val and {TEST} test images per class, "
             f"{PROMPTS} prompts per class; peak memory: resident set of the process during the stage)", "",
             "| classes | prompts | train images | " + " | ".join(f"{s} s | {s} peak MB" for s in order) + " |",
             "|---|---|---|" + "---|---|" * len(order)]  # fmt: skip
    for n in sizes:
        st = rows[n]["stages"]
        cells = [f"{st[s]['s']:.1f} | {st[s]['rss'] / 2**20:.0f}" for s in order]
        lines.append(f"| {n} | {n * PROMPTS} | {(n - n // 2) * SHOTS} | " + " | ".join(cells) + " |")
    if 100 in rows and 1000 in rows:
        a, b = rows[100]["stages"], rows[1000]["stages"]
        lines += ["", "Growth from 100 to 1000 classes (10x the classes, prompts and images; linear = 10x time):", "",
                  "| stage | time ratio | peak memory ratio |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {s} | {b[s]['s'] / max(a[s]['s'], 1e-9):.1f}x | {b[s]['rss'] / max(a[s]['rss'], 1):.2f}x |"
                  for s in order]  # fmt: skip
    if any(rows[n]["stages"]["fit"]["cuda"] for n in sizes):
        lines += ["", "Peak CUDA memory (MB): " + ", ".join(
            f"{n} classes: " + " / ".join(f"{rows[n]['stages'][s]['cuda'] / 2**20:.0f}" for s in order) for n in sizes)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path("runs/scale"), help="where the synthetic datasets go")
    parser.add_argument("--out", type=Path, default=Path("results/scale_dry_run.md"))
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # internal: one size, JSON out
    args = parser.parse_args()
    if args.one is not None:
        root = args.data / f"classes{args.one}"
        print("RESULT " + json.dumps(one_size(root, args.epochs, args.data / "runs" / f"classes{args.one}")))
        return
    import torch

    device = f"GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    rows = {}
    for n in args.classes:
        make_dataset(args.data / f"classes{n}", n)
        env = {**os.environ, "AAPE_CACHE_DIR": str(args.data / "cache" / f"classes{n}_{time.time_ns()}")}  # cold caches
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--epochs", str(args.epochs),
                              "--data", str(args.data)], env=env, capture_output=True, text=True)  # fmt: skip
        if out.returncode != 0:
            sys.exit(f"{n} classes failed:\n{out.stderr[-3000:]}")
        rows[n] = json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))[7:])
        print(f"{n} classes: " + ", ".join(f"{s} {v['s']:.1f} s / {v['rss'] / 2**20:.0f} MB"
                                           for s, v in rows[n]["stages"].items()), flush=True)  # fmt: skip
    table = markdown(rows, args.epochs, device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
