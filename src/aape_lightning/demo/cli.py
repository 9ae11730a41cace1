"""``demo`` commands: rebuild the shipped demo CLIP, write the demo datasets, check accuracy.

Defaults reproduce the shipped ``assets/demo_clip.pt`` (same seed, steps and threads).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from aape_lightning.demo.datasets import DEMO_DATASETS, ensure_demo_captions, ensure_demo_dataset
from aape_lightning.demo.pretrain import build_demo_clip, demo_accuracy

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aape-demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    clip_cmd = sub.add_parser("build-clip", help="pretrain the demo CLIP on the procedural world")
    clip_cmd.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    clip_cmd.add_argument("--seed", type=int, default=0)
    clip_cmd.add_argument("--steps", type=int, default=None, help="default: build_demo_clip's")
    clip_cmd.add_argument("--batch-size", type=int, default=None)
    clip_cmd.add_argument("--pool-size", type=int, default=None, help="scenes rendered for pretraining")
    clip_cmd.add_argument("--num-threads", type=int, default=None, help="results depend on it; default 1")
    data_cmd = sub.add_parser("build-data", help="write every demo dataset and the caption / VQA set")
    data_cmd.add_argument("--root", type=Path, required=True)
    data_cmd.add_argument("--seed", type=int, default=0)
    eval_cmd = sub.add_parser("evaluate", help="zero-shot and CuPL accuracy of a backbone on the demo datasets")
    eval_cmd.add_argument("--backbone", default="demo", help="registry name or checkpoint file")
    eval_cmd.add_argument("--root", type=Path, required=True, help="where the datasets are (written if absent)")
    eval_cmd.add_argument("--seed", type=int, default=0)
    return parser


def demo_main(argv: list[str] | None = None) -> int:
    """Run one demo command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "build-clip":
        options = {k: getattr(args, k) for k in ("steps", "batch_size", "pool_size", "num_threads")}
        path = build_demo_clip(args.out, seed=args.seed, **{k: v for k, v in options.items() if v is not None})
        print(path)
    elif args.command == "build-data":
        for name in DEMO_DATASETS:
            print(ensure_demo_dataset(name, args.root, seed=args.seed))
        print(ensure_demo_captions(args.root, seed=args.seed))
    else:
        from aape_lightning.backbones import FrozenCLIP

        backbone = FrozenCLIP.load(args.backbone)
        for name in DEMO_DATASETS:
            result = demo_accuracy(backbone, ensure_demo_dataset(name, args.root, seed=args.seed))
            print(json.dumps({"dataset": name, **{k: round(v, 4) for k, v in result.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(demo_main())
