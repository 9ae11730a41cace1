"""Retrieval transfer: plain CLIP vs AAPE-as-query, zero-shot from a caption-trained h and finetuned.

Per seed: fit h on the source captions; test it on the target's test split unchanged ("zero-shot");
then start from it, train on the target's train split and test again ("finetuned"). Plain CLIP
(``query: image``) is tested on the same split. On the demo world the source is DemoCaptions drawn
from the photo, textured and satellite domains and the target is DemoCaptions of sketches::

    python -m aape_lightning.experiments.retrieval_transfer --config configs/demo/retrieval.yaml

Every result is written to ``<output>/results.json`` as it arrives; the table is printed at the end.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

from aape_lightning.lightning_cli.aape_cli import lightning_main

log = logging.getLogger(__name__)

ROWS = ("plain CLIP", "AAPE zero-shot", "AAPE finetuned")


def _cli(config: str, seed: int, root: Path, data: list[str], extra: list[str] = ()):
    args = ["--config", config, "--seed_everything", str(seed), "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", *data, *extra]
    return lightning_main(args, run=False)


def transfer(config: str, source: list[str], target: list[str], seeds: list[int], output: Path) -> dict:
    """``source`` / ``target``: CLI overrides selecting each caption set; returns ``{row: [results per seed]}``."""
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}

    def record(row: str, cli) -> None:
        results[row].append({k: v for k, v in cli.model.test_results.items() if not k.startswith("clip_")})
        (output / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")

    plain = _cli(config, seeds[0], output / "plain", target, ["--model.query", "image"])
    plain.trainer.test(plain.model, datamodule=plain.datamodule, verbose=False)
    record("plain CLIP", plain)
    for seed in seeds:
        run = output / f"seed{seed}"
        src = _cli(config, seed, run / "source", source)
        src.trainer.fit(src.model, datamodule=src.datamodule)
        ckpt = src.trainer.checkpoint_callback.best_model_path or src.trainer.checkpoint_callback.last_model_path
        zero = _cli(config, seed, run / "zero_shot", target)
        zero.trainer.test(zero.model, datamodule=zero.datamodule, ckpt_path=ckpt, verbose=False)
        record("AAPE zero-shot", zero)
        tuned = _cli(config, seed, run / "finetuned", target, ["--model.init_from", ckpt])
        tuned.trainer.fit(tuned.model, datamodule=tuned.datamodule)
        tuned.trainer.test(tuned.model, datamodule=tuned.datamodule, verbose=False)
        record("AAPE finetuned", tuned)
    return results


def format_results(results: dict[str, list[dict[str, float]]], metrics: list[str]) -> str:
    """One row per method: mean (std) over seeds of each metric; plain CLIP is deterministic (one run)."""
    lines = [f"{'':16}" + "".join(f"{m:>16}" for m in metrics)]
    for row, runs in results.items():
        cells = []
        for m in metrics:
            values = [r[m] for r in runs]
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
            cells.append(f"{mean:7.2f} ({std:4.2f})")
        lines.append(f"{row:16}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo/retrieval.yaml", help="the retrieval fit config")
    parser.add_argument("--source", type=list[str], default=["--data.reader.domains=[photo,textured,satellite]"],
                        help="CLI overrides that select the source caption set")
    parser.add_argument("--target", type=list[str], default=["--data.reader.domains=[sketch]"],
                        help="CLI overrides that select the target caption set")
    parser.add_argument("--seeds", type=list[int], default=[1, 2, 3])
    parser.add_argument("--output", default="runs/demo_retrieval_transfer")
    parser.add_argument("--metrics", type=list[str], default=["i2t_R@1", "t2i_R@1", "i2t_R@5", "t2i_R@5"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("AAPE_LOG_LEVEL", "WARNING"))
    results = transfer(args.config, args.source, args.target, args.seeds, Path(args.output))
    print(format_results(results, args.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
