"""Downstream demo datasets written in CoOp's on-disk layout, plus a caption / VQA set.

Each dataset is generated from the procedural world on first use (seconds), so the
package's few-shot protocols run offline on real files that its readers treat like any
CoOp dataset. A ``manifest.json`` records the generator version and seed; a folder
written by another version or seed is regenerated, never silently reused.

Class lists mix attribute names the demo CLIP knows ("red circle") with concepts it
met rarely in pretraining ("stop sign"); the prompt bank (``prompts.json``, CuPL's
format) describes every class by its attributes, with an LLM's usual faults.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aape_lightning.demo.world import (
    COLOURS,
    CONCEPTS,
    PATTERNS,
    SHAPES,
    WORLD_VERSION,
    Scene,
    Spec,
    captions,
    plural,
    questions,
    render,
    sample_scene,
    with_articles,
)

log = logging.getLogger(__name__)

DATASETS_VERSION = f"{WORLD_VERSION}/datasets-1"
DEMO_IMAGE_SIZE = 48
MANIFEST = "manifest.json"
CAPTIONS_NAME = "DemoCaptions"


@dataclass(frozen=True)
class DemoDataset:
    """A classification dataset of the demo world: classes in label order, domains, template."""

    name: str
    classnames: tuple[str, ...]
    domains: tuple[str, ...]
    template: str
    per_class: tuple[int, int, int] = (24, 8, 40)  # train / val / test images per class

    def spec(self, classname: str) -> Spec:
        return class_spec(classname)


def class_spec(classname: str) -> Spec:
    """A concept's spec, or one read off an attribute name ("dotted hexagon", "orange stars")."""
    if classname in CONCEPTS:
        return CONCEPTS[classname]
    words = classname.split()
    shapes = {s: s for s in SHAPES} | {plural(s): s for s in SHAPES}
    return Spec(
        shape=next((shapes[w] for w in words if w in shapes), None),
        colour=next((w for w in words if w in COLOURS), None),
        pattern=next((w for w in words if w in PATTERNS), None),
    )


_SHAPE_CLASSES = (
    "red circle", "stop sign", "blue square", "striped triangle", "warning sign", "green star",
    "starfish", "purple diamond", "kite", "dotted hexagon", "donut", "pink cross",
)  # fmt: skip
DEMO_DATASETS: dict[str, DemoDataset] = {
    "DemoShapes": DemoDataset("DemoShapes", _SHAPE_CLASSES, ("photo", "textured"), "a photo of a {}."),
    "DemoSketch": DemoDataset("DemoSketch", _SHAPE_CLASSES, ("sketch",), "a sketch of a {}."),
    "DemoSatellite": DemoDataset(
        "DemoSatellite",
        (
            "forest", "orange stars", "farmland", "purple crosses", "residential area",
            "gray hexagons", "lake", "pink diamonds", "parking lot", "green triangles",
        ),  # fmt: skip
        ("satellite",),
        "a satellite image of {}.",
    ),
}
DEMO_TEMPLATES: dict[str, str] = {name: ds.template for name, ds in DEMO_DATASETS.items()}


# ---------------------------------------------------------------------------------------------
# the prompt bank: what an LLM asked "describe what a {class} looks like" would write
# ---------------------------------------------------------------------------------------------
_IRRELEVANT = {
    "stop sign": "Stop signs are placed at road crossings to control traffic.",
    "warning sign": "A warning sign tells drivers to slow down.",
    "starfish": "A starfish lives on the floor of the sea.",
    "kite": "Children fly a kite on windy days.",
    "donut": "A donut is a sweet snack eaten with coffee.",
    "forest": "A forest is home to many animals and birds.",
    "farmland": "Farmland is used to grow food for people.",
    "residential area": "People live with their families in a residential area.",
    "parking lot": "A parking lot is where people leave their cars.",
    "lake": "People go fishing and swimming in a lake.",
}
_VIEWS = {"photo": "photo", "textured": "photo", "sketch": "sketch", "satellite": "satellite image"}
_VAGUE = (
    "A {name} is a common thing.",
    "A {name} can be seen in many pictures.",
    "It is easy to recognize a {name}.",
    "A {name} has a typical look.",
)


def _look(spec: Spec, rng: random.Random) -> str:
    """A noun phrase for what instances of ``spec`` look like ("many small green dotted circles")."""
    many = spec.count is not None and spec.count[0] > 1 or spec.domain == "satellite" and spec.size != "large"
    count = rng.choice(("many", "several", "a few")) if many else "a"
    pattern = spec.pattern if spec.pattern and spec.pattern != "plain" else ""
    size = spec.size or ("small" if many and rng.random() < 0.5 else "")
    shape = (plural(spec.shape) if many else spec.shape) if spec.shape else rng.choice(("shapes", "objects"))
    return with_articles(" ".join(w for w in (count, size, spec.colour or "", pattern, shape) if w))


def prompt_bank(ds: DemoDataset, seed: int = 0) -> dict[str, list[str]]:
    """``{classname: [sentence, ...]}``: attribute descriptions with near-duplicates, vague and irrelevant lines."""
    bank: dict[str, list[str]] = {}
    for name in ds.classnames:
        rng = random.Random(f"prompts/{ds.name}/{seed}/{name}")
        spec = ds.spec(name)
        view = _VIEWS[ds.domains[0]]
        describe = [
            f"A {name} is {_look(spec, rng)}.",
            f"A {name} looks like {_look(spec, rng)}.",
            f"A {view} of a {name} shows {_look(spec, rng)}.",
            f"You can recognize a {name} as {_look(spec, rng)}.",
            f"A {name} appears as {_look(spec, rng)}.",
        ]
        if spec.colour:
            describe.append(f"A {name} is {spec.colour} in color.")
        if spec.pattern == "plain":
            describe.append(f"A {name} is plain with no pattern.")
        elif spec.pattern:
            describe.append(f"A {name} is covered in {'stripes' if spec.pattern == 'striped' else 'dots'}.")
        rng.shuffle(describe)
        sentences = describe[: rng.randint(4, len(describe))]
        sentences += [s.lower().rstrip(".") for s in rng.sample(sentences, 2)]  # near-duplicates
        sentences += [v.format(name=name) for v in rng.sample(_VAGUE, rng.randint(1, 2))]
        if name in _IRRELEVANT:
            sentences.append(_IRRELEVANT[name])
        rng.shuffle(sentences)
        bank[name] = [with_articles(s) for s in sentences]
    return bank


def demo_texts() -> list[str]:
    """Every class name, template and prompt the demo datasets use (their vocabulary)."""
    texts: list[str] = []
    for ds in DEMO_DATASETS.values():
        texts += [ds.template.format(c) for c in ds.classnames]
        texts += [s for sentences in prompt_bank(ds).values() for s in sentences]
    return texts


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _is_current(folder: Path, manifest: dict) -> bool:
    path = folder / MANIFEST
    if not path.is_file():
        return False
    return json.loads(path.read_text()) == manifest  # generator version, seed, sizes, class list


def _write_atomically(folder: Path, manifest: dict, write) -> Path:
    """Run ``write(tmpdir)`` and move the result to ``folder``; replace only our own stale folders."""
    if _is_current(folder, manifest):
        return folder
    if folder.exists():
        if not (folder / MANIFEST).is_file():
            raise FileExistsError(
                f"{folder} exists but was not written by the demo generator (no {MANIFEST}); "
                f"move it away or pass another root"
            )
        log.info("%s was written by another generator version or seed: regenerating", folder)
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _folder_name(classname: str) -> str:
    return classname.replace(" ", "_")


def ensure_demo_dataset(name: str, root: str | Path, seed: int = 0, image_size: int = DEMO_IMAGE_SIZE) -> Path:
    """Generate ``root/<name>/`` in the CoOp layout unless an identical one is there; return it."""
    if name not in DEMO_DATASETS:
        raise KeyError(f"unknown demo dataset {name!r}; known: {sorted(DEMO_DATASETS)}")
    ds = DEMO_DATASETS[name]
    manifest = {
        "generator": "aape_lightning.demo.datasets",
        "version": DATASETS_VERSION,
        "seed": seed,
        "image_size": image_size,
        "name": name,
        "classnames": list(ds.classnames),
        "concepts": [c for c in ds.classnames if c in CONCEPTS],
        "template": ds.template,
        "domains": list(ds.domains),
        "per_class": dict(zip(("train", "val", "test"), ds.per_class)),
    }

    def write(tmp: Path) -> None:
        log.info("writing demo dataset %s (seed %d) under %s", name, seed, root)
        split: dict[str, list] = {"train": [], "val": [], "test": []}
        specs = [ds.spec(c) for c in ds.classnames]
        for label, classname in enumerate(ds.classnames):
            folder = tmp / "images" / _folder_name(classname)
            folder.mkdir(parents=True)
            avoid = specs[:label] + specs[label + 1 :]
            for part, n in zip(split, ds.per_class):
                rng = random.Random(f"{name}/{seed}/{classname}/{part}")
                for i in range(n):
                    scene = sample_scene(rng, rng.choice(ds.domains), specs[label], avoid)
                    rel = f"{_folder_name(classname)}/{part}_{i:04d}.png"
                    render(scene, image_size).save(tmp / "images" / rel)
                    split[part].append([rel, label, classname])
        (tmp / f"split_zhou_{name}.json").write_text(json.dumps(split))
        (tmp / "classnames.txt").write_text("\n".join(ds.classnames) + "\n")
        (tmp / "prompts.json").write_text(json.dumps(prompt_bank(ds, seed), indent=1))

    return _write_atomically(Path(root) / name, manifest, write)


def ensure_demo_captions(
    root: str | Path, seed: int = 0, image_size: int = DEMO_IMAGE_SIZE, n_train: int = 600, n_test: int = 200
) -> Path:
    """Generate ``root/DemoCaptions/``: multi-object scenes with 5 captions and 3 questions each.

    ``captions.json``: ``[{"image", "split", "captions": [...]}]``; ``qa.json``:
    ``[{"image", "split", "question", "answers": [...]}]``; images under ``images/``.
    """
    manifest = {
        "generator": "aape_lightning.demo.datasets",
        "version": DATASETS_VERSION,
        "seed": seed,
        "image_size": image_size,
        "name": CAPTIONS_NAME,
        "counts": {"train": n_train, "test": n_test},
    }

    def write(tmp: Path) -> None:
        log.info("writing demo captions (seed %d) under %s", seed, root)
        (tmp / "images").mkdir()
        caps, qa = [], []
        for part, n in (("train", n_train), ("test", n_test)):
            rng = random.Random(f"{CAPTIONS_NAME}/{seed}/{part}")
            for i in range(n):
                scene: Scene = sample_scene(rng, clutter=(1, 2))
                rel = f"{part}_{i:05d}.png"
                render(scene, image_size).save(tmp / "images" / rel)
                caps.append({"image": rel, "split": part, "captions": captions(scene, rng, 5)})
                qa += [{"image": rel, "split": part, "question": q, "answers": a} for q, a in questions(scene, rng, 3)]
        (tmp / "captions.json").write_text(json.dumps(caps, indent=0))
        (tmp / "qa.json").write_text(json.dumps(qa, indent=0))

    return _write_atomically(Path(root) / CAPTIONS_NAME, manifest, write)

