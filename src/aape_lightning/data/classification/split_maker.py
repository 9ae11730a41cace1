"""Make a missing ``split_zhou_<Name>.json`` the way CoOp made its published ones.

CoOp publishes a fixed split file per dataset; use those for numbers comparable with the
papers. When one is missing, these functions make a split by CoOp's recipe, seeded with
``random.Random(seed)`` (CoOp drew from the global RNG, so the exact images differ):

- per class 50/20/30 train/val/test over the images of each class (DTD, Caltech101,
  Food101, EuroSAT, Flowers102), as CoOp's "read_and_split_data";
- 80/20 train/val of the official train(+val) list, official test list as test (OxfordPets,
  UCF101, SUN397, StanfordCars), as CoOp's "split_trainval".

Every maker takes ``(dataset_folder, image_dir, rng)`` and returns the split in CoOp's JSON
form, ``{"train"|"val"|"test": [[relpath, label, classname], ...]}``, with ``relpath`` relative
to ``image_dir`` and class names spelled as CoOp's files spell them.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from aape_lightning.data.image_files import IMAGE_SUFFIXES
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)

Entry = tuple[str, int, str]  # relpath, label, classname
SplitDict = dict[str, list[list]]
SplitMaker = Callable[[Path, Path, random.Random], SplitDict]

# CoOp's class-name conventions for the datasets whose splits are made from folders.
CALTECH_IGNORED = ("BACKGROUND_Google", "Faces_easy")
CALTECH_RENAMED = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
EUROSAT_RENAMED = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


# -- the two recipes --------------------------------------------------------------------
def split_groups(
    groups: Sequence[tuple[str, Sequence[str]]], rng: random.Random, p_train: float = 0.5, p_val: float = 0.2
) -> SplitDict:
    """Per class ``p_train``/``p_val``/rest of its images; ``groups[label] = (classname, relpaths)``."""
    split: SplitDict = {"train": [], "val": [], "test": []}
    for label, (classname, relpaths) in enumerate(groups):
        paths = sorted(relpaths)  # listing order differs between file systems; the seed alone decides
        rng.shuffle(paths)
        n_train, n_val = round(len(paths) * p_train), round(len(paths) * p_val)
        if min(n_train, n_val, len(paths) - n_train - n_val) <= 0:
            raise DataError(
                f"class {classname!r} has {len(paths)} images, too few for a "
                f"{p_train:.0%}/{p_val:.0%}/rest split (each part needs one); add images or drop the class"
            )
        for part, chunk in (
            ("train", paths[:n_train]),
            ("val", paths[n_train : n_train + n_val]),
            ("test", paths[n_train + n_val :]),
        ):
            split[part] += [[p, label, classname] for p in chunk]
    return split


def split_trainval(
    trainval: Sequence[Entry], test: Sequence[Entry], rng: random.Random, p_val: float = 0.2
) -> SplitDict:
    """Per class ``p_val`` of the official train(+val) list to val, the rest to train; test kept."""
    by_label: dict[int, list[Entry]] = defaultdict(list)
    for entry in trainval:
        by_label[entry[1]].append(entry)
    split: SplitDict = {"train": [], "val": [], "test": [list(e) for e in test]}
    for label in sorted(by_label):
        entries = sorted(by_label[label])
        rng.shuffle(entries)
        n_val = round(len(entries) * p_val)
        if n_val <= 0:
            raise DataError(
                f"class {entries[0][2]!r} has {len(entries)} training images, too few to hold out "
                f"{p_val:.0%} for validation"
            )
        split["val"] += [list(e) for e in entries[:n_val]]
        split["train"] += [list(e) for e in entries[n_val:]]
    return split


# -- reading what the datasets ship -----------------------------------------------------
def image_names(folder: Path) -> list[str]:
    """Image file names directly in ``folder``, sorted."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_folder_groups(
    image_dir: Path, ignore: Sequence[str] = (), rename: dict[str, str] | None = None
) -> list[tuple[str, list[str]]]:
    """``image_dir/<class>/<image>`` as ``[(classname, ["<class>/<image>", ...]), ...]`` in sorted folder order."""
    _require(image_dir)
    folders = sorted(p for p in image_dir.iterdir() if p.is_dir() and p.name not in ignore)
    if not folders:
        raise DataError(f"{image_dir}: no class folders; expected {image_dir}/<class>/<image>")
    rename = rename or {}
    return [(rename.get(f.name, f.name), [f"{f.name}/{n}" for n in image_names(f)]) for f in folders]


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path} is missing; `aape data prepare <name> --root <root>` says how to get it")
    return path


def text_lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a list file that must exist."""
    return [ln.strip() for ln in _require(path).read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


# -- one maker per dataset --------------------------------------------------------------
def folder_split(ignore: Sequence[str] = (), rename: dict[str, str] | None = None) -> SplitMaker:
    """A maker for ``image_dir/<class>/<image>`` datasets: CoOp's 50/20/30 per class."""

    def make(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
        return split_groups(class_folder_groups(image_dir, ignore, rename), rng)

    return make


caltech101 = folder_split(CALTECH_IGNORED, CALTECH_RENAMED)
describable_textures = folder_split()
food101 = folder_split()
eurosat = folder_split(rename=EUROSAT_RENAMED)


def oxford_flowers(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
    """``imagelabels.mat`` (1-based label of ``image_<i:05d>.jpg``) + ``cat_to_name.json``; 50/20/30 per class."""
    from scipy.io import loadmat

    labels = loadmat(_require(folder / "imagelabels.mat"))["labels"].reshape(-1)
    names = json.loads(_require(folder / "cat_to_name.json").read_text(encoding="utf-8"))
    by_label: dict[int, list[str]] = defaultdict(list)
    for i, label in enumerate(labels, start=1):
        by_label[int(label)].append(f"image_{i:05d}.jpg")
    return split_groups([(names[str(k)], by_label[k]) for k in sorted(by_label)], rng)


def list_fields(path: Path, line: str, count: int, example: str, numeric: tuple[int, ...] = ()) -> list[str]:
    """The first ``count`` fields of a list file's line; a short line or a non-number names the file and the fix."""
    fields = line.split()
    if len(fields) < count or any(not fields[i].isdigit() for i in numeric):
        raise DataError(
            f"{path}: line {line!r} is not like {example!r} ({count} fields"
            + (f", field {numeric[0] + 1} a class number" if numeric else "")
            + "); fix or remove that line, or fetch the list again"
        )
    return fields[:count]


def _pets_list(path: Path) -> list[Entry]:
    """Lines ``Abyssinian_100 1 1 1``: image id, 1-based class id, species, breed id."""
    entries = []
    for line in text_lines(path):
        image_id, class_id = list_fields(path, line, 2, "Abyssinian_100 1 1 1", numeric=(1,))
        breed = image_id.rsplit("_", 1)[0].lower()
        entries.append((f"{image_id}.jpg", int(class_id) - 1, breed))
    return entries


def oxford_pets(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
    """``annotations/trainval.txt`` 80/20 to train/val, ``annotations/test.txt`` to test."""
    annotations = folder / "annotations"
    return split_trainval(_pets_list(annotations / "trainval.txt"), _pets_list(annotations / "test.txt"), rng)


def _ucf_list(folder: Path, name: str, labels: dict[str, int]) -> list[Entry]:
    """Lines ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi [label]``; mid-frames live in ``Apply_Eye_Makeup/``."""
    entries = []
    path = folder / "ucfTrainTestlist" / name
    for line in text_lines(path):
        action, _, video = line.split()[0].partition("/")
        if action not in labels or not video:
            raise DataError(
                f"{path}: line {line!r} is not '<action in classInd.txt>/<video>.avi'; fix or remove that line"
            )
        renamed = "_".join(re.findall(r"[A-Z][^A-Z]*", action)) or action
        entries.append((f"{renamed}/{Path(video).stem}.jpg", labels[action], renamed))
    return entries


def ucf101(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
    """``ucfTrainTestlist/trainlist01.txt`` 80/20 to train/val, ``testlist01.txt`` to test."""
    labels = {}
    class_list = folder / "ucfTrainTestlist/classInd.txt"
    for line in text_lines(class_list):
        number, action = list_fields(class_list, line, 2, "1 ApplyEyeMakeup", numeric=(0,))
        labels[action] = int(number) - 1
    trainval, test = _ucf_list(folder, "trainlist01.txt", labels), _ucf_list(folder, "testlist01.txt", labels)
    return split_trainval(trainval, test, rng)


def sun397_classname(class_dir: str) -> str:
    """``a/apartment_building/outdoor`` -> ``outdoor apartment_building`` (CoOp's spelling)."""
    return " ".join(class_dir.strip("/").split("/")[1:][::-1])


def sun397(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
    """``ClassName.txt`` + ``Training_01.txt`` (80/20 train/val) + ``Testing_01.txt`` (test).

    Without the partition files (torchvision's download lacks them), every class folder is
    split 50/20/30 instead, and a warning says so.
    """
    class_dirs = [line.lstrip("/") for line in text_lines(folder / "ClassName.txt")]
    labels = {c: i for i, c in enumerate(class_dirs)}
    if not (folder / "Training_01.txt").is_file() or not (folder / "Testing_01.txt").is_file():
        log.warning(
            "%s: no Training_01.txt/Testing_01.txt (SUN397's Partitions.zip); splitting every class 50/20/30 instead",
            folder,
        )
        return split_groups([(sun397_classname(c), [f"{c}/{n}" for n in image_names(_require(image_dir / c))])
                             for c in class_dirs], rng)

    def entries(name: str) -> list[Entry]:
        out = []
        for line in text_lines(folder / name):
            relpath = line.lstrip("/")
            class_dir = relpath.rsplit("/", 1)[0]
            if class_dir not in labels:
                raise DataError(f"{folder / name}: {line} is in no class of ClassName.txt")
            out.append((relpath, labels[class_dir], sun397_classname(class_dir)))
        return out

    return split_trainval(entries("Training_01.txt"), entries("Testing_01.txt"), rng)


def stanford_cars_classname(raw: str) -> str:
    """``Tesla Model S Sedan 2012`` -> ``2012 Tesla Model S Sedan`` (CoOp's spelling)."""
    words = raw.split()
    return " ".join([words[-1], *words[:-1]]) if words else raw


def stanford_cars(folder: Path, image_dir: Path, rng: random.Random) -> SplitDict:
    """``devkit/cars_train_annos.mat`` (80/20 train/val) and ``cars_test_annos_withlabels.mat`` (test).

    Paths are relative to the dataset folder (``cars_train/00001.jpg``), as in CoOp's file.
    """
    from scipy.io import loadmat

    names = [str(n[0]) for n in loadmat(_require(folder / "devkit/cars_meta.mat"))["class_names"][0]]

    def entries(images: str, annotations: Path) -> list[Entry]:
        out = []
        for record in loadmat(_require(annotations))["annotations"][0]:
            label = int(record["class"][0, 0]) - 1
            out.append((f"{images}/{record['fname'][0]}", label, stanford_cars_classname(names[label])))
        return out

    return split_trainval(
        entries("cars_train", folder / "devkit/cars_train_annos.mat"),
        entries("cars_test", folder / "cars_test_annos_withlabels.mat"),
        rng,
    )


# -- writing ------------------------------------------------------------------------------
def write_split(split: SplitDict, path: Path) -> None:
    """Write CoOp's JSON to ``path``; an existing file is never replaced (exclusive create)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:
            json.dump(split, f, indent=1)
    except FileExistsError as err:
        raise DataError(f"{path} exists; a split file is never overwritten (delete it to make a new one)") from err


def make_split_file(maker: SplitMaker, folder: Path, image_dir: Path, path: Path, seed: int) -> SplitDict:
    """Make the split with ``random.Random(seed)`` and write it to ``path`` (which must not exist)."""
    if path.exists():
        raise DataError(f"{path} exists; a split file is never overwritten (delete it to make a new one)")
    split = maker(folder, image_dir, random.Random(seed))
    try:
        write_split(split, path)
    except PermissionError as err:
        raise DataError(
            f"cannot write the split file {path} ({err}); make the folder writable or set split_file to a "
            f"writable path"
        ) from err
    log.info("no split file at %s; made one with seed %d, wrote %s", path, seed, path)
    return split
