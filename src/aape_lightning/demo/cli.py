"""``demo`` commands: rebuild the shipped demo CLIP or LM, write the demo datasets, probe what they know.

Defaults reproduce the shipped ``assets/demo_clip.pt`` and ``assets/demo_lm.pt`` (same seed, steps and threads).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from aape_lightning.demo.datasets import DEMO_DATASETS, ensure_demo_captions, ensure_demo_dataset

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aape demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    clip_cmd = sub.add_parser("build-clip", help="pretrain the demo CLIP on the procedural world")
    clip_cmd.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    clip_cmd.add_argument("--seed", type=int, default=0)
    clip_cmd.add_argument("--steps", type=int, default=None, help="default: build_demo_clip's")
    clip_cmd.add_argument("--batch-size", type=int, default=None)
    clip_cmd.add_argument("--pool-size", type=int, default=None, help="scenes rendered for pretraining")
    clip_cmd.add_argument("--num-threads", type=int, default=None, help="results depend on it; default 1")
    clip_cmd.add_argument("--concept-rate", type=float, default=None, help="share of image captions naming a concept")
    clip_cmd.add_argument("--link-weight", type=float, default=None, help="weight of the name-description text loss")
    clip_cmd.add_argument("--gloss-keep", type=float, default=None, help="chance a glossary line states an attribute")
    clip_cmd.add_argument("--gloss-define", type=float, default=None, help="share of glossary pairs that are definitions")
    lm_cmd = sub.add_parser("build-lm", help="pretrain the demo LM on the demo world's captions and questions")
    lm_cmd.add_argument("--out", type=Path, required=True, help="LM file to write")
    lm_cmd.add_argument("--seed", type=int, default=0)
    lm_cmd.add_argument("--steps", type=int, default=None, help="default: build_demo_lm's")
    lm_cmd.add_argument("--num-threads", type=int, default=None, help="results depend on it; default 1")
    data_cmd = sub.add_parser("build-data", help="write every demo dataset and the caption / VQA set")
    data_cmd.add_argument("--root", type=Path, required=True)
    data_cmd.add_argument("--seed", type=int, default=0)
    probe_cmd = sub.add_parser("probe", help="do language priors matter on the demo world; does a head use its AAPE?")
    probe_cmd.add_argument("--backbone", default="demo", help="registry name or checkpoint file")
    probe_cmd.add_argument("--root", type=Path, default=Path("data/demo"), help="the demo datasets (written if absent)")
    probe_cmd.add_argument("--seed", type=int, default=0, help="the demo datasets' generator seed")
    probe_cmd.add_argument("--ckpt", type=Path, nargs="*", default=[], help="AAPE checkpoints to probe (shuffle test)")
    probe_cmd.add_argument("--json", action="store_true", help="print one JSON object per row instead of tables")
    return parser


def _probe(args: argparse.Namespace) -> None:
    # lazy (start-up): torch and lightning; `aape demo --help` and `build-data` import neither
    from aape_lightning.backbones import FrozenCLIP
    from aape_lightning.demo.probe import (
        dataset_of,
        demo_test_set,
        format_checkpoints,
        format_world,
        probe_checkpoint,
        probe_world,
    )
    from aape_lightning.tasks.checkpoint import load_task

    backbone = FrozenCLIP.load(args.backbone)
    rows = [row for name in DEMO_DATASETS for row in probe_world(backbone, demo_test_set(backbone, name, args.root, args.seed))]
    trained = []
    for ckpt in args.ckpt:
        task = load_task(ckpt)
        test = demo_test_set(task.backbone, dataset_of(task, ckpt), args.root, args.seed)
        trained.append({"checkpoint": str(ckpt), **probe_checkpoint(task, test)})
    if args.json:
        for row in [*rows, *trained]:
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}))
        return
    print(f"backbone {args.backbone}: accuracy (%) on the test images of each half, zero-shot among its classes")
    print(format_world(rows))
    if trained:
        print("\nnew classes, trained AAPE heads: own h(x) against h(x) of an image of another class")
        print(format_checkpoints(trained))


def demo_main(argv: list[str] | None = None) -> int:
    """Run one demo command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "build-clip":
        # lazy (start-up): torch, imported only by the commands that train
        from aape_lightning.demo.pretrain import build_demo_clip

        keys = ("steps", "batch_size", "pool_size", "num_threads", "concept_rate", "link_weight", "gloss_keep",
                "gloss_define")
        options = {k: getattr(args, k) for k in keys}
        path = build_demo_clip(args.out, seed=args.seed, **{k: v for k, v in options.items() if v is not None})
        print(path)
    elif args.command == "build-lm":
        # lazy (start-up): torch, as above
        from aape_lightning.demo.lm_pretrain import build_demo_lm

        options = {k: getattr(args, k) for k in ("steps", "num_threads") if getattr(args, k) is not None}
        print(build_demo_lm(args.out, seed=args.seed, **options))
    elif args.command == "build-data":
        for name in DEMO_DATASETS:
            print(ensure_demo_dataset(name, args.root, seed=args.seed))
        print(ensure_demo_captions(args.root, seed=args.seed))
    else:
        _probe(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(demo_main())
