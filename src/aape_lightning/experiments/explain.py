"""``aape explain``: which reference prompts the trained aggregator kept and which it suppressed (the paper's Fig. 7).

    aape explain --ckpt_path run/checkpoints/last.ckpt --images DIR [--out explain] [--top 5]

For each image under DIR it draws the image next to its class's reference prompts, the ``--top``
with the most and the fewest attention weight of the aggregator's query (averaged over heads), as a
PNG, and writes every weight to ``<out>/attention.json``. The image's class is its folder's name
when that names a class of the checkpoint (``DIR/<class>/x.png``, spaces or underscores), else the
class the model predicts. The prompts come from ``--prompts`` (a CuPL-format JSON), else from the
data the checkpoint was trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import textwrap
from importlib import import_module
from pathlib import Path

import torch
from PIL import Image

from aape_lightning.data.image_decode import open_rgb
from aape_lightning.data.image_files import IMAGE_SUFFIXES, find_images
from aape_lightning.errors import CheckpointMismatchError, DataError
from aape_lightning.prompts.keys import nfc
from aape_lightning.prompts.resolve import resolve_prompts

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aape explain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--ckpt_path", type=Path, required=True, help="an AAPE checkpoint written by `aape fit`")
    parser.add_argument("--images", type=Path, required=True, help="an image file or a folder of them")
    parser.add_argument("--out", type=Path, default=Path("explain"), help="where the PNGs and attention.json go")
    parser.add_argument("--prompts", type=Path, default=None, help="CuPL JSON; default: the training data's bank")
    parser.add_argument("--top", type=int, default=5, help="prompts shown with the most and with the least weight")
    return parser


def class_prompts(task, ckpt_path: Path, prompts: Path | None) -> dict[str, list[str]]:
    """Every class of the checkpoint -> its reference prompts (from ``prompts`` or the saved data settings)."""
    sets = task.hparams.get("class_sets") or {}
    if prompts is not None:
        return {n: p for names in sets.values() for n, p in zip(names, resolve_prompts(prompts, names))}
    # lazy: moved_keys imports the tasks (lightning), which `aape explain --help` need not wait for
    from aape_lightning.lightning_cli.moved_keys import upgrade_class_paths

    saved = upgrade_class_paths(torch.load(ckpt_path, map_location="cpu", weights_only=False).get("aape_data"))
    if not saved:
        raise DataError(f"checkpoint {ckpt_path} carries no data settings; pass --prompts <CuPL JSON>")
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    for package in ("aape_lightning.data", "aape_lightning.demo"):
        import_module(package)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data")
    data = parser.instantiate_classes(parser.parse_object({"data": saved})).data
    data.prepare_data()
    data.setup("test")
    return {n: p for name in data.class_sets for n, p in zip(data.class_sets[name], data.prompts_for(name))}


def image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = find_images(path, fix="pass the link's target as --images")
    if not files:
        raise DataError(f"--images {path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found there")
    return files


def folder_class(path: Path, classes: list[str]) -> str | None:
    """The class named by the image's folder (case, spaces and underscores ignored), if any."""
    key = nfc(path.parent.name).replace("_", " ").lower()
    return next((c for c in classes if nfc(c).replace("_", " ").lower() == key), None)


@torch.no_grad()
def explain_image(task, pixels: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The image's feature ``(1, d)`` and the aggregator's attention on each of ``prompts``, ``(M,)``."""
    aggregator = task.head.core.aggregator
    feature = task.backbone.encode_image(pixels.unsqueeze(0))  # (1, d)
    bank = task.backbone.text_features(prompts).unsqueeze(0)  # (1, M, d)
    mask = torch.ones(bank.shape[:2], dtype=torch.bool, device=bank.device)  # (1, M)
    return feature, aggregator.attention(feature, bank, mask)[0].cpu()  # (M,)


def draw(image: Image.Image, classname: str, how: str, prompts: list[str], weights: torch.Tensor, top: int,
         path: Path) -> Path:  # fmt: skip
    """The image beside a bar per prompt: the ``top`` most attended (green) and least attended (red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = torch.argsort(weights, descending=True).tolist()
    shown = order if len(order) <= 2 * top else order[:top] + order[-top:]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(shown) + 1.5), width_ratios=(1, 3))
    left.imshow(image)
    left.set_axis_off()
    left.set_title(f"{classname}\n({how})", fontsize=9)
    kept = set(order[:top])
    labels = [textwrap.shorten(prompts[i], 80) for i in shown]
    right.barh(range(len(shown)), [float(weights[i]) for i in shown],
               color=["tab:green" if i in kept else "tab:red" for i in shown])  # fmt: skip
    right.set_yticks(range(len(shown)), labels, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("attention weight of the aggregator's query (mean over heads)")
    right.set_title(f"{len(prompts)} reference prompts; top {min(top, len(order))} (green) and bottom (red); "
                    f"weight on the query itself {1 - float(weights.sum()):.2f}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def explain_main(argv: list[str] | None = None) -> int:
    # lazy: torchvision and lightning, which `aape explain --help` (and a bad argument) need not wait for
    from aape_lightning.data.transforms import backbone_transform
    from aape_lightning.tasks.checkpoint import load_task

    args = _parser().parse_args(argv)
    task = load_task(args.ckpt_path)
    aggregator = getattr(getattr(getattr(task, "head", None), "core", None), "aggregator", None)
    if not hasattr(aggregator, "attention"):
        raise CheckpointMismatchError(
            f"checkpoint {args.ckpt_path}: its head ({type(getattr(task, 'head', task)).__name__}) has no attention "
            "aggregator to explain; pass a checkpoint of an AAPE head with the AttentionAggregator (configs/classification/aape.yaml)"
        )
    bank = class_prompts(task, args.ckpt_path, args.prompts)
    backbone = task.backbone
    transform = backbone_transform(backbone)
    for name, names in (task.hparams.get("class_sets") or {}).items():
        task.head.set_classes(name, names, task.hparams["template"])
    records = []
    for path in image_files(args.images):
        image = open_rgb(path)
        pixels = transform(image).to(backbone.device)  # (3, R, R)
        classname = folder_class(path, list(bank))
        how = "its folder"
        if classname is None:
            names, logits = task._predict_logits(backbone.encode_image(pixels.unsqueeze(0)))
            classname, how = names[int(logits.argmax())], "predicted"
        _, weights = explain_image(task, pixels, bank[classname])
        stem = path.relative_to(args.images).with_suffix("") if args.images.is_dir() else Path(path.stem)
        png = draw(image, classname, how, bank[classname], weights, args.top, args.out / f"{stem}.png")
        records.append({"image": str(path), "class": classname, "class_from": how, "png": str(png),
                        "prompts": bank[classname], "weights": [round(float(w), 6) for w in weights]})  # fmt: skip
        log.info("%s: %s (%s), %d prompts -> %s", path, classname, how, len(weights), png)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attention.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
    print(f"explained {len(records)} image(s): {args.out}/")
    return 0
