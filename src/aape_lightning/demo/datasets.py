"""Downstream demo datasets written in CoOp's on-disk layout, plus a caption / VQA set.

Each dataset is generated from the procedural world on first use (seconds), so the
package's few-shot protocols run offline on real files that its readers treat like any
CoOp dataset. A ``manifest.json`` records the generator version and seed; a folder
written by another version or seed is regenerated, never silently reused.

Class lists mix attribute names the demo CLIP knows from images ("red circle") with
concepts it knows only from text ("stop sign", in every dataset on both sides of the
base/new split); the prompt bank (``prompts.json``, CuPL's format) describes every class
by its attributes, with an LLM's usual faults at a level set by ``noise``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no file lock; the rename check below still keeps one complete folder
    fcntl = None

from aape_lightning.demo.world import (
    COLOURS,
    CONCEPTS,
    DOMAINS,
    PATTERNS,
    SHAPES,
    WORLD_VERSION,
    Scene,
    Spec,
    captions,
    family,
    plural,
    questions,
    render,
    sample_scene,
    spec_phrase,
    with_articles,
)
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)

DATASETS_VERSION = f"{WORLD_VERSION}/datasets-2"
PROMPT_NOISE = 1.0  # LLM-style faults in the prompt banks (see prompt_bank)
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
    "stop sign", "exit sign", "tiger moth", "luna moth", "blue square", "purple star",  # base
    "detour sign", "info sign", "atlas moth", "emperor moth", "pink ring", "gray cross",  # new
)  # fmt: skip
DEMO_DATASETS: dict[str, DemoDataset] = {
    "DemoShapes": DemoDataset("DemoShapes", _SHAPE_CLASSES, ("photo", "textured"), "a photo of a {}."),
    "DemoSketch": DemoDataset("DemoSketch", _SHAPE_CLASSES, ("sketch",), "a sketch of a {}."),
    "DemoSatellite": DemoDataset(
        "DemoSatellite",
        (
            "pine forest", "birch forest", "residential area", "industrial area", "orange stars",  # base
            "wheat field", "rice field", "pink diamonds", "blue hexagons", "purple crosses",  # new
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
    "sign": "A {name} stands by the road for drivers to read.",
    "moth": "A {name} flies at night and rests by day.",
    "forest": "A {name} is home to many animals and birds.",
    "area": "People work and live in a {name}.",
    "field": "Farmers harvest a {name} once a year.",
}  # per family (the last name word)
_VIEWS = {"photo": "photo", "textured": "photo", "sketch": "sketch", "satellite": "satellite image"}
_VAGUE = (
    "A {name} is a common thing.",
    "A {name} can be seen in many pictures.",
    "It is easy to recognize a {name}.",
    "A {name} has a typical look.",
)


def prompt_bank(ds: DemoDataset, seed: int = 0, noise: float = PROMPT_NOISE) -> dict[str, list[str]]:
    """``{classname: [sentence, ...]}``: attribute descriptions plus an LLM's faults.

    ``noise`` scales the faults: 1.0 adds per class 2 near-duplicates, 1-2 vague lines and, for
    concepts, an irrelevant fact; 0 leaves 4-7 clean descriptions; 2.0 doubles the faults.
    """
    if noise < 0:
        raise ValueError(f"prompt noise must be >= 0, got {noise}")
    bank: dict[str, list[str]] = {}
    for name in ds.classnames:
        rng = random.Random(f"prompts/{ds.name}/{seed}/{name}")
        spec = ds.spec(name)
        view = _VIEWS[ds.domains[0]]
        describe = [
            f"A {name} is {spec_phrase(spec, rng)}.",
            f"A {name} looks like {spec_phrase(spec, rng)}.",
            f"A {view} of a {name} shows {spec_phrase(spec, rng)}.",
            f"You can recognize a {name} as {spec_phrase(spec, rng)}.",
            f"A {name} appears as {spec_phrase(spec, rng)}.",
        ]
        if spec.colour:
            describe.append(f"A {name} is {spec.colour} in color.")
        if spec.pattern == "plain":
            describe.append(f"A {name} is plain with no pattern.")
        elif spec.pattern:
            describe.append(f"A {name} is covered in {'stripes' if spec.pattern == 'striped' else 'dots'}.")
        rng.shuffle(describe)
        sentences = describe[: rng.randint(4, len(describe))]
        n_dup, n_vague = round(2 * noise), round(rng.randint(1, 2) * noise)
        sentences += [s.lower().rstrip(".") for s in rng.choices(sentences, k=n_dup)]  # near-duplicates
        sentences += [rng.choice(_VAGUE).format(name=name) for _ in range(n_vague)]
        if name in CONCEPTS:
            sentences += [_IRRELEVANT[family(name)].format(name=name)] * round(noise)
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
def _is_current(folder: Path, manifest: dict, warn: bool = True) -> bool:
    path = folder / MANIFEST
    if not path.is_file():
        return False
    try:
        if json.loads(path.read_text(encoding="utf-8")) != manifest:  # generator version, seed, sizes, class list
            return False
    except (ValueError, OSError):  # a damaged manifest: the folder is ours but not current
        return False
    for written in sorted(folder.glob("*.json")):  # splits, prompts, captions: a damaged one is rebuilt too
        try:
            json.loads(written.read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:
            if warn:
                log.warning("demo data file %s is damaged (%s); regenerating %s", written, type(err).__name__, folder)
            return False
    return True


@contextmanager
def _build_lock(root: Path):
    """Lock the demo root folder itself (no lock file left behind) so concurrent first uses build once."""
    if fcntl is None:
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, also if the process dies
        except OSError as err:  # a file system without locks (some NFS): the rename check still holds
            log.debug("no lock on %s (%s); building without it", root, err)
        yield
    finally:
        os.close(fd)


_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _check_root(root: Path) -> None:
    """A demo root must be a folder (or not exist yet); a file there is a user error, not a traceback."""
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                raise DataError(
                    f"demo root {root}: {path} is a file, not a folder; pass a folder for the demo datasets "
                    f"(data.reader.root=<folder>, or --root for `aape demo`)"
                )
            return


def _write_atomically(folder: Path, manifest: dict, write) -> Path:
    """Run ``write(tmpdir)`` and move the result to ``folder``; replace only our own stale folders.

    Safe when several processes build the same folder at once: they take turns (a file lock), and
    where locks do not work, one that finds a current folder already moved into place keeps it
    and discards its own copy.
    """
    if _is_current(folder, manifest):
        return folder
    _check_root(folder.parent)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(folder.parent):
            _write_unlocked(folder, manifest, write)
    except OSError as err:
        if err.errno not in _UNWRITABLE:
            raise
        raise DataError(
            f"cannot write the demo data under {folder.parent} ({err.strerror or err}); pass a writable folder "
            f"(data.reader.root=<folder>, or --root for `aape demo`)"
        ) from err
    return folder


def _write_unlocked(folder: Path, manifest: dict, write) -> None:
    if _is_current(folder, manifest, warn=False):  # another process built it while we waited for the lock
        return
    if folder.exists():
        if not folder.is_dir() or not (folder / MANIFEST).is_file():
            raise DataError(
                f"{folder} exists but was not written by the demo generator (no {MANIFEST}); "
                f"move it away or pass another root"
            )
        log.info("%s was written by another generator version or seed: regenerating", folder)
        stale = Path(tempfile.mkdtemp(prefix=f".{folder.name}-stale-", dir=folder.parent))
        os.replace(folder, stale / folder.name)  # out of the way at once, deleted below
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            os.replace(tmp, folder)
        except OSError as err:
            if not _is_current(folder, manifest):  # a folder appeared meanwhile, and it is not this one
                raise DataError(
                    f"{folder} appeared while the demo data was written there, and not by this generator "
                    f"(no matching {MANIFEST}); move it away or pass another root"
                ) from err
            log.info("%s was written by another process meanwhile; using it", folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _folder_name(classname: str) -> str:
    return classname.replace(" ", "_")


def ensure_demo_dataset(
    name: str, root: str | Path, seed: int = 0, image_size: int = DEMO_IMAGE_SIZE, noise: float = PROMPT_NOISE
) -> Path:
    """Generate ``root/<name>/`` in the CoOp layout unless an identical one is there; return it."""
    if name not in DEMO_DATASETS:
        raise KeyError(f"unknown demo dataset {name!r}; known: {sorted(DEMO_DATASETS)}")
    ds = DEMO_DATASETS[name]
    manifest = {
        "generator": "aape_lightning.demo.datasets",
        "version": DATASETS_VERSION,
        "seed": seed,
        "image_size": image_size,
        "prompt_noise": noise,
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
        (tmp / f"split_zhou_{name}.json").write_text(json.dumps(split), encoding="utf-8")
        (tmp / "classnames.txt").write_text("\n".join(ds.classnames) + "\n", encoding="utf-8")
        (tmp / "prompts.json").write_text(json.dumps(prompt_bank(ds, seed, noise), indent=1), encoding="utf-8")

    return _write_atomically(Path(root) / name, manifest, write)


def ensure_demo_captions(
    root: str | Path,
    seed: int = 0,
    image_size: int = DEMO_IMAGE_SIZE,
    n_train: int = 600,
    n_test: int = 200,
    domains: list[str] | None = None,
) -> Path:
    """Generate ``root/DemoCaptions/``: multi-object scenes with 5 captions and 3 questions each.

    ``captions.json``: ``[{"image", "split", "captions": [...]}]``; ``qa.json``:
    ``[{"image", "split", "question", "answers": [...]}]``; images under ``images/``.
    ``domains`` draws scenes from those domains only, into ``root/DemoCaptions-<d1+d2>/`` (a
    shifted caption set, e.g. for zero-shot transfer); the default draws from every domain.
    """
    unknown = sorted(set(domains or ()) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown demo domain(s) {unknown}; known: {list(DOMAINS)}")
    name = CAPTIONS_NAME + (f"-{'+'.join(domains)}" if domains else "")
    manifest = {
        "generator": "aape_lightning.demo.datasets",
        "version": DATASETS_VERSION,
        "seed": seed,
        "image_size": image_size,
        "name": CAPTIONS_NAME,
        "counts": {"train": n_train, "test": n_test},
        **({"domains": list(domains)} if domains else {}),  # absent by default: existing folders stay current
    }

    def write(tmp: Path) -> None:
        log.info("writing demo captions (seed %d) under %s", seed, root)
        (tmp / "images").mkdir()
        caps, qa = [], []
        for part, n in (("train", n_train), ("test", n_test)):
            rng = random.Random(f"{CAPTIONS_NAME}/{seed}/{part}")
            for i in range(n):
                domain = rng.choice(domains) if domains else None  # None: sample_scene draws any domain
                scene: Scene = sample_scene(rng, domain, clutter=(1, 2))
                rel = f"{part}_{i:05d}.png"
                render(scene, image_size).save(tmp / "images" / rel)
                caps.append({"image": rel, "split": part, "captions": captions(scene, rng, 5)})
                qa += [{"image": rel, "split": part, "question": q, "answers": a} for q, a in questions(scene, rng, 3)]
        (tmp / "captions.json").write_text(json.dumps(caps, indent=0), encoding="utf-8")
        (tmp / "qa.json").write_text(json.dumps(qa, indent=0), encoding="utf-8")

    return _write_atomically(Path(root) / name, manifest, write)

