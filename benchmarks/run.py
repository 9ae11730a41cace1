"""Speed ratios measured side by side in one run (never absolute timings in tests).

    python benchmarks/run.py [--size tiny|vit-b-16] [--repeats 3]

Prints, for the chosen backbone size (the feature store's ratios: benchmarks/feature_store.py):
  * AAPE fusion: token fusion / feature fusion time for one batch of logits over K classes;
  * inference throughput from pixels (image encoder included) on one batch over K classes:
    AAPE (concat fusion, the default) against zero-shot CLIP and CoCoOp, as ratios of images/s.
    The paper reports AAPE as slow as CoCoOp; the target here is >= 0.9x zero-shot, >= 10x CoCoOp.
    (python benchmarks/run.py --size vit-b-16 --batch 32 --eval-classes 100)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from aape_lightning.backbones import FrozenCLIP, build_tiny_clip
from aape_lightning.experiments.cost import RANDOM_ARCHITECTURES
from aape_lightning.heads import AAPEHead, CoCoOpHead, ZeroShotHead

SIZES = {
    "tiny": {},
    "vit-b-16": RANDOM_ARCHITECTURES["ViT-B/16"],  # ViT-B/16's architecture (random weights: speed does not depend on them)
}


def timed(fn, repeats: int, warmup=None) -> float:
    (warmup or fn)()  # warm-up (caches class features, allocators)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32, help="images in the throughput batch")
    parser.add_argument("--eval-classes", type=int, default=100, help="classes in the throughput comparison")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_clip(Path(tmp) / "clip.pt", **SIZES[args.size])
        backbone = FrozenCLIP.load(str(path), cache_dir=tmp).to(device)
        res = backbone.image_resolution
        images = torch.randn(args.images, 3, res, res, device=device)
        classes = [f"class {i}" for i in range(args.classes)]
        heads = {}
        for fusion in ("feature", "token"):
            head = AAPEHead(backbone, fusion=fusion).to(device).eval()
            head.set_classes("all", classes, "a photo of a {}.")
            heads[fusion] = head
        feats = backbone.encode_image(images)
        with torch.no_grad():
            t_feature = timed(lambda: heads["feature"](feats, "all"), args.repeats)
            t_token = timed(lambda: heads["token"](feats, "all"), args.repeats)
        throughput = inference_times(backbone, args.batch, args.eval_classes, args.repeats, device)
    print(f"backbone {args.size} on {device}: {args.images} images, {args.classes} classes")
    print(f"AAPE fusion          token/feature time ratio:   {t_token / t_feature:6.2f}x")
    aape = throughput["aape"]
    print(f"inference throughput ({args.batch} images, {args.eval_classes} classes, image encoder included):")
    print(f"  AAPE / zero-shot CLIP images/s ratio: {throughput['zero_shot'] / aape:6.3f}x")
    print(f"  AAPE / CoCoOp images/s ratio:         {throughput['cocoop'] / aape:6.2f}x")


def inference_times(backbone: FrozenCLIP, batch: int, num_classes: int, repeats: int, device) -> dict[str, float]:
    """Seconds per batch from pixels to logits for zero-shot CLIP, AAPE (concat) and CoCoOp, side by side."""
    res = backbone.image_resolution
    images = torch.randn(batch, 3, res, res, device=device)
    classes = [f"class {i}" for i in range(num_classes)]
    heads = {"zero_shot": ZeroShotHead(backbone), "aape": AAPEHead(backbone, fusion="concat"),
             "cocoop": CoCoOpHead(backbone)}
    times = {}
    with torch.no_grad():
        for name, head in heads.items():
            head = head.to(device).eval()
            head.set_classes("all", classes, "a photo of a {}.")
            run = lambda head=head: head(backbone.encode_image(images), "all").logits  # noqa: E731
            warm = lambda head=head: head(backbone.encode_image(images[:1]), "all").logits  # noqa: E731
            times[name] = timed(run, repeats if name != "cocoop" else 1, warmup=warm)
    return times


if __name__ == "__main__":
    main()
