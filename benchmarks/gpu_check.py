"""The GPU check behind benchmarks/gpu_check.sh: mixed-precision fits, the store filled on the GPU, throughput.

    python benchmarks/gpu_check.py            # on a CUDA machine, under 5 minutes
    python benchmarks/gpu_check.py --dry      # the same steps at test size on CPU (checks the script itself)

1. AAPE fits on the demo world (DemoShapes, base-to-new) with ``16-mixed`` and ``bf16-mixed``, with
   ``feature_views`` on: the store is filled on the GPU under each precision (its own namespace),
   then the run is tested; each row: H, s/epoch, images encoded and read from the store.
2. Images/s from pixels to logits of zero-shot CLIP, AAPE (concat fusion) and CoCoOp at ViT-B/16's
   architecture (random weights) with a batch of 256 under ``16-mixed`` autocast, with peak GPU memory.

Prints one summary table (markdown). ``--dry``: the test-sized CLIP, a generated dataset, CPU,
``32-true`` and ``bf16-mixed``, a batch of 8.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def fits(tmp: Path, dry: bool) -> list[list[str]]:
    import lightning as L

    from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
    from aape_lightning.demo.readers import DemoReader
    from aape_lightning.experiments.cost import EpochTimer
    from aape_lightning.heads import AAPEHead
    from aape_lightning.tasks import ClassificationTask

    if dry:
        from feature_store import make_dataset

        from aape_lightning.backbones import build_tiny_clip

        backbone, data = str(build_tiny_clip(tmp / "tiny.pt", seed=0)), make_dataset(tmp / "Bench", 4, (4, 1, 2), 48)
        reader, precisions, epochs = CoOpSplitReader(str(data)), ("32-true", "bf16-mixed"), 1
        prompts = str(data / "prompts.json")
    else:
        backbone, reader, precisions, epochs = "demo", DemoReader(name="DemoShapes", root="data/demo"), ("16-mixed", "bf16-mixed"), 3
        prompts = None
    rows = []
    for precision in precisions:
        L.seed_everything(1)
        model = ClassificationTask(backbone=backbone, head=AAPEHead)
        dm = ClassificationDataModule(reader, shots=16, batch_size=32, num_workers=2, feature_views=4,
                                      **({"prompts": prompts} if prompts else {}))  # fmt: skip
        timer = EpochTimer()
        trainer = L.Trainer(accelerator="cpu" if dry else "gpu", devices=1, precision=precision, max_epochs=epochs,
                            logger=False, callbacks=[timer], enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, default_root_dir=tmp / precision)  # fmt: skip
        trainer.fit(model, dm)
        trainer.test(model, dm, verbose=False)
        h = model.test_results.get("H", float("nan"))
        rows.append([f"fit AAPE DemoShapes {precision}" if not dry else f"fit AAPE tiny {precision}", f"H {h:.2f}",
                     f"{sum(timer.times) / len(timer.times):.2f} s/epoch",
                     f"{dm.store_counts['encoded']} encoded, {dm.store_counts['read']} read", ""])  # fmt: skip
    return rows


def throughput(tmp: Path, dry: bool) -> list[list[str]]:
    import torch

    from aape_lightning.backbones import FrozenCLIP, build_tiny_clip
    from aape_lightning.experiments.cost import RANDOM_ARCHITECTURES
    from aape_lightning.heads import AAPEHead, CoCoOpHead, ZeroShotHead

    device = torch.device("cpu" if dry else "cuda")
    arch = {} if dry else RANDOM_ARCHITECTURES["ViT-B/16"]
    backbone = FrozenCLIP.load(str(build_tiny_clip(tmp / "arch.pt", seed=0, **arch)), cache_dir=tmp).to(device)
    batch = 8 if dry else 256
    res = backbone.image_resolution
    images = torch.randn(batch, 3, res, res, device=device)
    classes = [f"class {i}" for i in range(100)]
    dtype = torch.bfloat16 if dry else torch.float16
    rows = []
    for name, head in (("zero-shot", ZeroShotHead(backbone)), ("AAPE", AAPEHead(backbone, fusion="concat")),
                       ("CoCoOp", CoCoOpHead(backbone))):  # fmt: skip
        head = head.to(device).eval()
        head.set_classes("all", classes, "a photo of a {}.")
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
            head(backbone.encode_image(images[:2]), "all")  # warm-up: class features, kernels
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            repeats = 1 if name == "CoCoOp" else 3
            start = time.perf_counter()
            for _ in range(repeats):
                head(backbone.encode_image(images), "all")
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / repeats
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB peak" if device.type == "cuda" else "(CPU)"
        rows.append([f"{name} {'tiny' if dry else 'ViT-B/16'} batch {batch} {dtype}".replace("torch.", ""),
                     f"{batch / seconds:.1f} images/s", "", "", peak])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry", action="store_true", help="test size on CPU: checks the script, measures nothing")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aape_gpu_check_"))
    os.environ["AAPE_CACHE_DIR"] = str(tmp / "cache")  # an empty store: filled here, on this device
    import torch

    if not args.dry and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device; run with --dry to check the script on CPU")
    start = time.perf_counter()
    rows = fits(tmp, args.dry) + throughput(tmp, args.dry)
    device = "CPU (dry run)" if args.dry else torch.cuda.get_device_name(0)
    print(f"\n# GPU check on {device}, {time.perf_counter() - start:.0f} s, torch {torch.__version__}\n")
    print("| what | result | time | feature store | memory |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
