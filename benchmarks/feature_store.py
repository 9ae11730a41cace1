"""The feature store's ratios, measured side by side in one process (never absolute timings in tests).

    nice python benchmarks/feature_store.py [--classes 4] [--shots 8] [--batch 8] [--epochs 2] [--views 2] [--tiny]

At ViT-B/16's architecture with random weights (speed does not depend on them; ``--tiny``: the
test-sized CLIP, for a quick check), on a generated few-shot dataset, it fits and tests:

  1. AAPE as before the store: pixels decoded, augmented and encoded every step (``feature_store: false``);
  2. AAPE with stored views (``feature_views``): the views are encoded once, then each epoch reads them;
  3. CoOp with the same stored views, after AAPE, on the same data.

and prints three ratios (targets from issue 20): AAPE s/epoch today / with stored views (>= 10),
AAPE with stored views / CoOp s/epoch (<= 0.1: CoOp runs the text encoder every step), and the
images the second method (CoOp) encoded / those the first (AAPE) encoded (0). ``--out`` writes
them as markdown (default results/feature_store_bench.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path


def make_dataset(root: Path, classes: int, per_split: tuple[int, int, int], size: int) -> Path:
    """A CoOp-layout dataset of random-noise images (``split_zhou_Bench.json``) and a CuPL prompt file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    split = {"train": [], "val": [], "test": []}
    names = [f"class {i}" for i in range(classes)]
    for label, name in enumerate(names):
        folder = root / "images" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for part, count in zip(("train", "val", "test"), per_split):
            for _ in range(count):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{n}.png")
                split[part].append([f"c{label}/{n}.png", label, name])
                n += 1
    (root / "split_zhou_Bench.json").write_text(json.dumps(split))
    (root / "prompts.json").write_text(json.dumps({n: [f"a {n}.", f"a photo of a {n}.", f"one {n}."] for n in names}))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=4, help="classes (half base, half new)")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--views", type=int, default=2, help="data.feature_views of runs 2 and 3")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="the test-sized CLIP instead of ViT-B/16's architecture")
    parser.add_argument("--out", default="results/feature_store_bench.md")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aape_store_bench_"))
    os.environ["AAPE_CACHE_DIR"] = str(tmp / "cache")  # a store of its own, empty at the start
    import lightning as L
    import torch

    from aape_lightning.backbones import FrozenCLIP, build_tiny_clip
    from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
    from aape_lightning.experiments.cost import RANDOM_ARCHITECTURES, EpochTimer
    from aape_lightning.heads import AAPEHead, CoOpHead
    from aape_lightning.tasks import ClassificationTask

    arch = {} if args.tiny else RANDOM_ARCHITECTURES["ViT-B/16"]
    clip = build_tiny_clip(tmp / "clip.pt", seed=0, **arch)
    size = 224 if not args.tiny else 48
    data = make_dataset(tmp / "Bench", args.classes, (args.shots, 1, 2), size)
    encoded = [0]
    encode = FrozenCLIP.encode_image

    def counting(self, images):
        encoded[0] += len(images)
        return encode(self, images)

    FrozenCLIP.encode_image = counting

    def fit(name: str, head, **data_args) -> tuple[list[float], int]:
        """Fit for the epochs (timed, loop only) and test; the epoch times and images encoded."""
        L.seed_everything(0)
        encoded[0] = 0
        model = ClassificationTask(backbone=str(clip), head=head)
        dm = ClassificationDataModule(CoOpSplitReader(str(data)), shots=args.shots, batch_size=args.batch,
                                      eval_batch_size=32, num_workers=0, prompts=str(data / "prompts.json"),
                                      **data_args)  # fmt: skip
        timer = EpochTimer()
        trainer = L.Trainer(accelerator="auto", devices=1, max_epochs=args.epochs, logger=False, callbacks=[timer],
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            limit_val_batches=0, default_root_dir=tmp / name)  # fmt: skip
        trainer.fit(model, dm)
        trainer.test(model, dm, verbose=False)
        print(f"  {name}: s/epoch {[round(t, 3) for t in timer.times]}, images encoded {encoded[0]}", file=sys.stderr)
        return timer.times, encoded[0]

    today, today_enc = fit("aape_today", AAPEHead, feature_store=False)
    views, views_enc = fit("aape_views", AAPEHead, feature_views=args.views)
    coop, coop_enc = fit("coop_views", CoOpHead, feature_views=args.views)
    m = statistics.mean
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} thread(s)"
    setup = (f"backbone {'tiny test CLIP' if args.tiny else 'ViT-B/16 architecture, random weights'}; {args.classes} classes "
             f"x {args.shots} shots, batch {args.batch}, {args.epochs} epochs, feature_views {args.views}; {device}; "
             f"{platform.python_version()}")  # fmt: skip
    rows = [
        ("AAPE s/epoch, today (pixels, fresh augmentation) / stored views", m(today) / m(views), ">= 10"),
        ("AAPE s/epoch with stored views / CoOp s/epoch with stored views", m(views) / m(coop), "<= 0.1"),
        ("images encoded by the second method (CoOp) / by the first (AAPE)", coop_enc / max(views_enc, 1), "0"),
    ]
    command = " ".join(["python benchmarks/feature_store.py", *sys.argv[1:]])
    lines = [f"# Feature store benchmark (generated by `{command}`)",
             "", setup, "", "| ratio | measured | target |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {value:.3g} | {target} |" for name, value, target in rows]
    lines += ["", f"s/epoch (mean): AAPE today {m(today):.3f}, AAPE stored views {m(views):.3f}, CoOp stored views "
              f"{m(coop):.3f}; images encoded: {today_enc} (AAPE today, every step), {views_enc} (AAPE, views filled "
              f"once), {coop_enc} (CoOp after it)"]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
