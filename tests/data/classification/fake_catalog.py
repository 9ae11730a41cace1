"""Tiny fake trees of the catalogued datasets in CoOp's exact layout (no downloads), for the tests.

``BUILDERS[name](folder, split)`` writes a dataset folder with 2-3 classes of 8x8 images:
with ``split=True`` a CoOp-style split file (first 50/20/30% of each class, not shuffled, so it
is independent of the split maker), otherwise only what the dataset itself ships. Shared by
test_catalog_reader.py, test_split_maker.py, test_prepare.py and test_check.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

from aape_lightning.data.classification.catalog import CATALOG

IMAGENET = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark")]


@dataclass
class Tree:
    classnames: list[str]  # the readable names the reader must return, by label
    sizes: tuple[int, int, int]  # train/val/test (the same whether the split file is written here or made)


def img(path: Path, colour: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (colour * 60 % 256, 80, 120)).save(path)


def coop_split(folder: Path, name: str, groups: list[tuple[str, list[str]]], parts=(0.5, 0.2)) -> None:
    """``split_zhou_<name>.json``: per class the first 50% train, next 20% val, rest test."""
    split = {"train": [], "val": [], "test": []}
    for label, (classname, paths) in enumerate(groups):
        n_train, n_val = round(len(paths) * parts[0]), round(len(paths) * parts[1])
        for part, chunk in (("train", paths[:n_train]), ("val", paths[n_train:n_train + n_val]),
                            ("test", paths[n_train + n_val:])):
            split[part] += [[p, label, classname] for p in chunk]
    (folder / f"split_zhou_{name}.json").write_text(json.dumps(split))


def trainval_split(folder: Path, name: str, trainval, test) -> None:
    """A split file from (relpath, label, classname) lists: per class the last trainval item is val."""
    split = {"train": [], "val": [], "test": [list(e) for e in test]}
    for label in sorted({e[1] for e in trainval}):
        entries = [list(e) for e in trainval if e[1] == label]
        split["train"] += entries[:-1]
        split["val"] += entries[-1:]
    (folder / f"split_zhou_{name}.json").write_text(json.dumps(split))


def class_folders(folder: Path, image_dir: str, folders: list[str], n: int = 10, ext: str = "jpg") -> None:
    for k, f in enumerate(folders):
        for i in range(n):
            img(folder / image_dir / f / f"{f}_{i}.{ext}", k)


def folder_dataset(name: str, image_dir: str, folders: list[str], coop_names: list[str], readable: list[str],
                   ignored: tuple[str, ...] = ()):
    """A builder for ``<image_dir>/<class>/<image>`` datasets (10 images a class: 5/2/3)."""

    def build(folder: Path, split: bool) -> Tree:
        class_folders(folder, image_dir, folders + list(ignored))
        if split:
            groups = [(c, [f"{f}/{f}_{i}.jpg" for i in range(10)]) for f, c in zip(folders, coop_names)]
            coop_split(folder, name, groups)
        return Tree(readable, (5 * len(folders), 2 * len(folders), 3 * len(folders)))

    return build


def build_flowers(folder: Path, split: bool, names: bool = True) -> Tree:
    labels = [1, 2, 3] * 10  # interleaved, as in the real imagelabels.mat
    for i, label in enumerate(labels, start=1):
        img(folder / "jpg" / f"image_{i:05d}.jpg", label)
    savemat(folder / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    cat_to_name = {"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"}
    if names:
        (folder / "cat_to_name.json").write_text(json.dumps(cat_to_name))
    if split:
        groups = [(cat_to_name[str(k)], [f"image_{i:05d}.jpg" for i, lab in enumerate(labels, 1) if lab == k])
                  for k in (1, 2, 3)]
        coop_split(folder, "OxfordFlowers", groups)
    return Tree(list(cat_to_name.values()), (15, 6, 9))


def build_pets(folder: Path, split: bool) -> Tree:
    breeds = ["Abyssinian", "american_bulldog", "Bengal"]
    trainval, test, lines = [], [], {"trainval": [], "test": []}
    for k, breed in enumerate(breeds):
        for i in range(10):
            img(folder / "images" / f"{breed}_{i + 1}.jpg", k)
            part = "trainval" if i < 5 else "test"
            lines[part].append(f"{breed}_{i + 1} {k + 1} 1 {k + 1}")
            (trainval if i < 5 else test).append((f"{breed}_{i + 1}.jpg", k, breed.lower()))
    (folder / "annotations").mkdir(parents=True)
    for part, rows in lines.items():
        (folder / "annotations" / f"{part}.txt").write_text("\n".join(rows) + "\n")
    if split:
        trainval_split(folder, "OxfordPets", trainval, test)
    return Tree(["abyssinian", "american bulldog", "bengal"], (12, 3, 15))


def build_ucf(folder: Path, split: bool) -> Tree:
    actions = ["ApplyEyeMakeup", "Basketball", "YoYo"]
    renamed = ["Apply_Eye_Makeup", "Basketball", "Yo_Yo"]
    lists = folder / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{k + 1} {a}\n" for k, a in enumerate(actions)))
    trainval, test, rows = [], [], {"trainlist01.txt": [], "testlist01.txt": []}
    for k, (action, folder_name) in enumerate(zip(actions, renamed)):
        for g in range(1, 11):
            video = f"v_{action}_g{g:02d}_c01"
            img(folder / "UCF-101-midframes" / folder_name / f"{video}.jpg", k)
            entry = (f"{folder_name}/{video}.jpg", k, folder_name)
            if g <= 5:
                rows["trainlist01.txt"].append(f"{action}/{video}.avi {k + 1}")
                trainval.append(entry)
            else:
                rows["testlist01.txt"].append(f"{action}/{video}.avi")
                test.append(entry)
    for name, lines in rows.items():
        (lists / name).write_text("\n".join(lines) + "\n")
    if split:
        trainval_split(folder, "UCF101", trainval, test)
    return Tree(["Apply Eye Makeup", "Basketball", "Yo Yo"], (12, 3, 15))


SUN_CLASSES = ["a/abbey", "a/apartment_building/outdoor", "b/bakery/shop"]


def build_sun(folder: Path, split: bool, partitions: bool = True) -> Tree:
    (folder / "ClassName.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "ClassName.txt").write_text("".join(f"/{c}\n" for c in SUN_CLASSES))
    trainval, test, rows = [], [], {"Training_01.txt": [], "Testing_01.txt": []}
    coop_names = ["abbey", "outdoor apartment_building", "shop bakery"]
    for k, c in enumerate(SUN_CLASSES):
        for i in range(10):
            img(folder / "SUN397" / c / f"sun_{k}{i}.jpg", k)
            entry = (f"{c}/sun_{k}{i}.jpg", k, coop_names[k])
            (trainval if i < 5 else test).append(entry)
            rows["Training_01.txt" if i < 5 else "Testing_01.txt"].append(f"/{c}/sun_{k}{i}.jpg")
    if partitions:
        for name, lines in rows.items():
            (folder / name).write_text("\n".join(lines) + "\n")
    if split:
        trainval_split(folder, "SUN397", trainval, test)
    return Tree(["abbey", "outdoor apartment building", "shop bakery"], (12, 3, 15))


CARS = ["Tesla Model S Sedan 2012", "Audi R8 Coupe 2012", "smart fortwo Convertible 2012"]


def _annotations(entries: list[tuple[str, int]]) -> np.ndarray:
    records = np.zeros((1, len(entries)), dtype=[("fname", "O"), ("class", "O")])
    for i, (fname, label) in enumerate(entries):
        records[0, i]["fname"] = fname
        records[0, i]["class"] = np.array([[label + 1]], dtype=np.uint8)
    return records


def build_cars(folder: Path, split: bool) -> Tree:
    readable = [" ".join([c.split()[-1], *c.split()[:-1]]) for c in CARS]
    trainval, test = [], []
    rows = {"cars_train": [], "cars_test": []}
    for k in range(len(CARS)):
        for i in range(10):
            part = "cars_train" if i < 5 else "cars_test"
            fname = f"{k * 10 + i + 1:05d}.jpg"
            img(folder / part / fname, k)
            rows[part].append((fname, k))
            (trainval if i < 5 else test).append((f"{part}/{fname}", k, readable[k]))
    (folder / "devkit").mkdir(parents=True)
    names = np.empty((1, len(CARS)), dtype=object)
    names[0, :] = CARS
    savemat(folder / "devkit" / "cars_meta.mat", {"class_names": names})
    savemat(folder / "devkit" / "cars_train_annos.mat", {"annotations": _annotations(rows["cars_train"])})
    savemat(folder / "cars_test_annos_withlabels.mat", {"annotations": _annotations(rows["cars_test"])})
    if split:
        trainval_split(folder, "StanfordCars", trainval, test)
    return Tree(readable, (12, 3, 15))


def build_aircraft(folder: Path, split: bool) -> Tree:
    variants = ["707-320", "A300B4", "Cessna 172"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "variants.txt").write_text("\n".join(variants) + "\n")
    counts = {"train": 3, "val": 2, "test": 2}
    n = 1000000
    for part, count in counts.items():
        rows = []
        for k, v in enumerate(variants):
            for _ in range(count):
                n += 1
                img(folder / "images" / f"{n}.jpg", k)
                rows.append(f"{n} {v}")
        (folder / f"images_variant_{part}.txt").write_text("\n".join(rows) + "\n")
    return Tree(variants, (9, 6, 6))


def imagenet_classnames(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("".join(f"{w} {n}\n" for w, n in IMAGENET))


def build_imagenet(folder: Path, split: bool) -> Tree:
    imagenet_classnames(folder / "classnames.txt")
    for k, (wnid, _) in enumerate(IMAGENET):
        for i in range(4):
            img(folder / "images" / "train" / wnid / f"{wnid}_{i}.JPEG", k)
        for i in range(2):
            img(folder / "images" / "val" / wnid / f"ILSVRC2012_val_{k}{i}.JPEG", k)
    return Tree([n for _, n in IMAGENET], (12, 6, 6))


def build_imagenet_v2(folder: Path, split: bool) -> Tree:
    imagenet_classnames(folder.parent / "imagenet" / "classnames.txt")
    for k in range(len(IMAGENET)):
        for i in range(2):
            img(folder / "imagenetv2-matched-frequency-format-val" / str(k) / f"{i}abc.jpeg", k)
    return Tree([n for _, n in IMAGENET], (0, 0, 6))


def build_imagenet_sketch(folder: Path, split: bool) -> Tree:
    imagenet_classnames(folder.parent / "imagenet" / "classnames.txt")
    for k, (wnid, _) in enumerate(IMAGENET):
        for i in range(2):
            img(folder / "images" / wnid / f"sketch_{i}.png", k)
    return Tree([n for _, n in IMAGENET], (0, 0, 6))


def imagenet_subset(image_dir: str, keep: list[int]):
    def build(folder: Path, split: bool) -> Tree:
        imagenet_classnames(folder.parent / "imagenet" / "classnames.txt")
        for k in keep:
            for i in range(2):
                img(folder / image_dir / IMAGENET[k][0] / f"{i}.jpg", k)
        (folder / image_dir / "README.txt").write_text("not a class\n")
        return Tree([IMAGENET[k][1] for k in keep], (0, 0, 2 * len(keep)))

    return build


BUILDERS = {
    "ImageNet": build_imagenet,
    "Caltech101": folder_dataset(
        "Caltech101", "101_ObjectCategories", ["Faces", "airplanes", "car_side"], ["face", "airplane", "car_side"],
        ["face", "airplane", "car side"], ignored=("BACKGROUND_Google", "Faces_easy"),
    ),
    "OxfordPets": build_pets,
    "StanfordCars": build_cars,
    "OxfordFlowers": build_flowers,
    "Food101": folder_dataset(
        "Food101", "images", ["apple_pie", "baby_back_ribs", "waffles"], ["apple_pie", "baby_back_ribs", "waffles"],
        ["apple pie", "baby back ribs", "waffles"],
    ),
    "FGVCAircraft": build_aircraft,
    "SUN397": build_sun,
    "DescribableTextures": folder_dataset(
        "DescribableTextures", "images", ["banded", "blotchy", "zigzagged"], ["banded", "blotchy", "zigzagged"],
        ["banded", "blotchy", "zigzagged"],
    ),
    "EuroSAT": folder_dataset(
        "EuroSAT", "2750", ["AnnualCrop", "Forest", "SeaLake"], ["Annual Crop Land", "Forest", "Sea or Lake"],
        ["Annual Crop Land", "Forest", "Sea or Lake"],
    ),
    "UCF101": build_ucf,
    "ImageNetV2": build_imagenet_v2,
    "ImageNetSketch": build_imagenet_sketch,
    "ImageNetA": imagenet_subset("imagenet-a", [1, 2]),
    "ImageNetR": imagenet_subset("imagenet-r", [0, 2]),
}


def build(name: str, root: Path, split: bool = True) -> Tree:
    """The fake dataset ``name`` under the data root ``root`` (in CoOp's folder for it)."""
    return BUILDERS[name](root / CATALOG[name].folder, split)
