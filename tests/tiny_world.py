"""A tiny CoOp-layout dataset of coloured shapes, drawn by the tests (no downloads)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

TINY_CLASSES = ["red square", "green circle", "blue triangle", "yellow square", "purple circle", "orange triangle"]
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20),
           "purple": (150, 40, 200), "orange": (250, 140, 10)}


def draw(classname: str, rng: random.Random, size: int = 40) -> Image.Image:
    colour, shape = classname.split()
    im = Image.new("RGB", (size, size), tuple(rng.randrange(0, 60) for _ in range(3)))
    d = ImageDraw.Draw(im)
    x, y, r = rng.randrange(8, 24), rng.randrange(8, 24), rng.randrange(6, 12)
    box = [x, y, x + r + 8, y + r + 8]
    fill = COLOURS[colour]
    if shape == "square":
        d.rectangle(box, fill=fill)
    elif shape == "circle":
        d.ellipse(box, fill=fill)
    else:
        d.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=fill)
    return im


def make_coop_dataset(root: Path, classes=TINY_CLASSES, per_split=(8, 4, 4), seed: int = 0) -> Path:
    """``root/images/<class>/<n>.png``, ``split_zhou_Tiny.json`` and a CuPL ``prompts.json``."""
    rng = random.Random(seed)
    split = {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        folder = root / "images" / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        for part, count in zip(("train", "val", "test"), per_split):
            for _ in range(count):
                draw(name, rng).save(folder / f"{n}.png")
                split[part].append([f"{folder.name}/{n}.png", label, name])
                n += 1
    (root / "split_zhou_Tiny.json").write_text(json.dumps(split))
    prompts = {name: [f"a {name}.", f"a photo of a {name} shape.", f"something {name.split()[0]}."] for name in classes}
    (root / "prompts.json").write_text(json.dumps(prompts))
    return root
