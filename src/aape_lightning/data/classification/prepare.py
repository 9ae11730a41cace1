"""Get a catalogued dataset into CoOp's layout: download, lay out, make a missing split (``aape data prepare``).

Datasets torchvision can download are downloaded with ``torchvision.datasets`` into
``<root>/_downloads/<folder>/`` and linked (or moved) into CoOp's layout, and a missing split
file is made by :mod:`~aape_lightning.data.classification.split_maker`. For the rest (ImageNet and its
variants, UCF101, StanfordCars, whose source is offline), the steps to fetch them are printed.
The URLs are those of CoOp's DATASETS.md; its published split files give numbers comparable
with the papers, a made split (same recipe, other random draw) does not exactly.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aape_lightning.data.classification import split_maker as sm
from aape_lightning.data.classification.catalog import CATALOG, catalog_entry
from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}/view?usp=sharing"


def _split_step(name: str, file_id: str) -> str:
    return f"Download split_zhou_{name}.json from {_drive(file_id)} to {{folder}}/split_zhou_{name}.json"


_CLASSNAMES = f"CoOp's ImageNet classnames.txt (lines 'n01440764 tench'): {_drive('1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF')}"
_COPY_CLASSNAMES = (
    "Copy {root}/imagenet/classnames.txt to {folder}/classnames.txt (or keep it in {root}/imagenet/: "
    "the reader looks there too; " + _CLASSNAMES + ")"
)


@dataclass(frozen=True)
class Source:
    """How to get one dataset.

    ``torchvision``: the ``torchvision.datasets`` class that downloads it; ``links``: (path under
    torchvision's download folder, path under the dataset folder) to link or move; ``optional``
    links are skipped when absent; ``extra_urls``: archives that class does not fetch;
    ``steps``: the manual way, with ``{root}`` and ``{folder}`` filled in; ``finish``: writes
    what CoOp's layout has and torchvision's lacks.
    """

    torchvision: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    optional: tuple[tuple[str, str], ...] = ()
    extra_urls: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    finish: Callable[[Path], list[str]] | None = None


def _write_flower_names(folder: Path) -> list[str]:
    """CoOp reads Flowers102's class names from ``cat_to_name.json``; torchvision ships them as a list."""
    path = folder / "cat_to_name.json"
    if path.exists():
        return [f"kept {path}"]
    from torchvision.datasets import Flowers102

    path.write_text(json.dumps({str(i + 1): name for i, name in enumerate(Flowers102.classes)}, indent=1), encoding="utf-8")
    return [f"wrote {path}"]


SOURCES: dict[str, Source] = {
    "ImageNet": Source(steps=(
        "Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org/download-images.php "
        "(an account is needed)",
        "Extract the training images to {folder}/images/train/<wnid>/ (1,000 folders like n01440764)",
        "Extract the validation images to {folder}/images/val/<wnid>/ (a flat val folder must first be sorted "
        "into class folders, e.g. with LOC_val_solution.csv or the usual valprep.sh)",
        "Download " + _CLASSNAMES + " to {folder}/classnames.txt",
    )),
    "Caltech101": Source(
        "Caltech101", links=(("caltech101/101_ObjectCategories", "101_ObjectCategories"),),
        steps=(
            "Download https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip, extract it and the "
            "101_ObjectCategories.tar.gz inside it, giving {folder}/101_ObjectCategories/<class>/",
            _split_step("Caltech101", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
        ),
    ),
    "OxfordPets": Source(
        "OxfordIIITPet", links=(("oxford-iiit-pet/images", "images"), ("oxford-iiit-pet/annotations", "annotations")),
        steps=(
            "Download https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz and extract it to {folder}/images/",
            "Download https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz and extract it to "
            "{folder}/annotations/",
            _split_step("OxfordPets", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
        ),
    ),
    "StanfordCars": Source(steps=(
        "Download http://ai.stanford.edu/~jkrause/car196/cars_train.tgz and extract it to {folder}/cars_train/",
        "Download http://ai.stanford.edu/~jkrause/car196/cars_test.tgz and extract it to {folder}/cars_test/",
        "Download https://ai.stanford.edu/~jkrause/cars/car_devkit.tgz and extract it to {folder}/devkit/",
        "Download http://ai.stanford.edu/~jkrause/car196/cars_test_annos_withlabels.mat to {folder}/",
        "(the Stanford site is often offline and torchvision can no longer download it; copies with the same "
        "file names, e.g. on Kaggle, work)",
        _split_step("StanfordCars", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
    )),
    "OxfordFlowers": Source(
        "Flowers102",
        links=(("flowers-102/jpg", "jpg"), ("flowers-102/imagelabels.mat", "imagelabels.mat")),
        optional=(("flowers-102/setid.mat", "setid.mat"),),
        finish=_write_flower_names,
        steps=(
            "Download https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz and extract it to {folder}/jpg/",
            "Download https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat to {folder}/",
            f"Download cat_to_name.json from {_drive('1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0')} to {{folder}}/",
            _split_step("OxfordFlowers", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
        ),
    ),
    "Food101": Source(
        "Food101", links=(("food-101/images", "images"),), optional=(("food-101/meta", "meta"),),
        steps=(
            "Download http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz and extract it to {root}/ (giving {folder}/)",
            _split_step("Food101", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
        ),
    ),
    "FGVCAircraft": Source(
        "FGVCAircraft",
        links=tuple(
            (f"fgvc-aircraft-2013b/data/{f}", f)
            for f in ("images", "variants.txt", *(f"images_variant_{s}.txt" for s in ("train", "val", "test")))
        ),
        steps=(
            "Download https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz, "
            "extract it, keep only its data/ folder and move that to {folder}/ (no split file is needed)",
        ),
    ),
    "SUN397": Source(
        "SUN397",
        links=(("SUN397", "SUN397"), ("SUN397/ClassName.txt", "ClassName.txt")),
        optional=(("Training_01.txt", "Training_01.txt"), ("Testing_01.txt", "Testing_01.txt")),
        extra_urls=("https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip",),
        steps=(
            "Download http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz and extract it to {folder}/ "
            "(giving {folder}/SUN397/)",
            "Download https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip and extract it to "
            "{folder}/ (ClassName.txt, Training_01.txt, Testing_01.txt, ...)",
            _split_step("SUN397", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
        ),
    ),
    "DescribableTextures": Source(
        "DTD", links=(("dtd/dtd/images", "images"),), optional=(("dtd/dtd/labels", "labels"), ("dtd/dtd/imdb", "imdb")),
        steps=(
            "Download https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz and extract it to "
            "{root}/ (giving {folder}/images/)",
            _split_step("DescribableTextures", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
        ),
    ),
    "EuroSAT": Source(
        "EuroSAT", links=(("eurosat/2750", "2750"),),
        steps=(
            "Download EuroSAT.zip (http://madm.dfki.de/files/sentinel/EuroSAT.zip, or the copy torchvision uses: "
            "https://huggingface.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/"
            "EuroSAT.zip) and extract it to {folder}/ (giving {folder}/2750/)",
            _split_step("EuroSAT", "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"),
        ),
    ),
    "UCF101": Source(steps=(
        f"Download UCF-101-midframes.zip (CoOp's middle frames) from {_drive('10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O')} "
        "and extract it to {folder}/ (giving {folder}/UCF-101-midframes/Apply_Eye_Makeup/...)",
        _split_step("UCF101", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
        "(without that split file, a split is made from ucfTrainTestlist/: extract "
        "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip to {folder}/)",
    )),
    "ImageNetV2": Source(steps=(
        "Download https://s3-us-west-2.amazonaws.com/imagenetv2public/imagenetv2-matched-frequency.tar.gz "
        "(see https://github.com/modestyachts/ImageNetV2) and extract it to {folder}/ "
        "(giving {folder}/imagenetv2-matched-frequency-format-val/0..999/)",
        _COPY_CLASSNAMES,
    )),
    "ImageNetSketch": Source(steps=(
        "Download ImageNet-Sketch (ImageNet-Sketch.zip, linked from https://github.com/HaohanWang/ImageNet-Sketch) "
        "and extract it so that the images are in {folder}/images/<wnid>/ (1,000 folders)",
        _COPY_CLASSNAMES,
    )),
    "ImageNetA": Source(steps=(
        "Download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar (see "
        "https://github.com/hendrycks/natural-adv-examples) and extract it to {folder}/ "
        "(giving {folder}/imagenet-a/<wnid>/, 200 folders)",
        _COPY_CLASSNAMES,
    )),
    "ImageNetR": Source(steps=(
        "Download https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar (see "
        "https://github.com/hendrycks/imagenet-r) and extract it to {folder}/ (giving {folder}/imagenet-r/<wnid>/, "
        "200 folders)",
        _COPY_CLASSNAMES,
    )),
}
assert set(SOURCES) == set(CATALOG), "every catalogued dataset needs a Source"

Downloader = Callable[[str, Path], None]


@dataclass
class Outcome:
    """What ``prepare`` did (lines to print) and whether the dataset is now ready."""

    ready: bool
    lines: list[str] = field(default_factory=list)


def instructions(name: str, root: str | Path) -> list[str]:
    """The manual steps for a dataset, with its folder filled in."""
    spec = catalog_entry(name)
    root = Path(root).expanduser().absolute()
    folder = root / spec.folder
    steps = [s.format(root=root, folder=folder) for s in SOURCES[spec.name].steps]
    return [
        f"{spec.name}: fetch these files and put them under {folder}:",
        *(f"  {i}. {s}" for i, s in enumerate(steps, start=1)),
        f"then run: aape data check {spec.name} --root {root}",
    ]


def torchvision_download(name: str, download_root: Path) -> None:
    """Download with ``torchvision.datasets`` (and any archive it does not fetch) into ``download_root``."""
    import torchvision.datasets
    from torchvision.datasets.utils import download_and_extract_archive

    source = SOURCES[catalog_entry(name).name]
    download_root.mkdir(parents=True, exist_ok=True)
    getattr(torchvision.datasets, source.torchvision)(str(download_root), download=True)
    for url in source.extra_urls:
        download_and_extract_archive(url, str(download_root))


def _find(download_root: Path, relpath: str) -> Path | None:
    """``download_root/relpath``, else a file of that name one folder down (archives differ in nesting)."""
    exact = download_root / relpath
    if exact.exists():
        return exact
    return next(iter(sorted(download_root.glob(f"*/{Path(relpath).name}"))), None)


def lay_out(
    name: str, download_root: str | Path, dest: str | Path, mode: Literal["symlink", "move"] = "symlink"
) -> list[str]:
    """Arrange an already-downloaded torchvision folder into CoOp's layout at ``dest``; existing paths are kept."""
    spec = catalog_entry(name)
    source = SOURCES[spec.name]
    if source.torchvision is None:
        raise DataError(f"{spec.name} is not downloaded by torchvision; `aape data prepare` prints what to fetch")
    download_root, dest = Path(download_root).expanduser().absolute(), Path(dest).expanduser().absolute()
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for (src_rel, dst_rel), required in [(link, True) for link in source.links] + [(o, False) for o in source.optional]:
        target = dest / dst_rel
        if target.exists() or target.is_symlink():
            done.append(f"kept {target}")
            continue
        src = _find(download_root, src_rel)
        if src is None:
            if required:
                raise DataError(
                    f"{download_root / src_rel} is missing: {download_root} is not a complete torchvision download "
                    f"of {source.torchvision}; delete it and run `aape data prepare {spec.name}` again"
                )
            done.append(f"skipped {dst_rel} (not in the download)")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "move":
            shutil.move(str(src), str(target))
            done.append(f"moved {src} -> {target}")
        else:
            target.symlink_to(src.resolve(), target_is_directory=src.is_dir())
            done.append(f"linked {target} -> {src.resolve()}")
    if source.finish is not None:
        done += source.finish(dest)
    return done


def prepare(
    name: str,
    root: str | Path,
    download_dir: str | Path | None = None,
    mode: Literal["symlink", "move"] = "symlink",
    seed: int = 1,
    downloader: Downloader | None = None,
) -> Outcome:
    """Download and lay out a dataset (or say how to); ``ready`` when it then reads.

    A dataset that already reads is left alone (nothing is downloaded). ``downloader(name,
    download_root)`` defaults to :func:`torchvision_download`.
    """
    spec = catalog_entry(name)
    source = SOURCES[spec.name]
    root = Path(root).expanduser().absolute()
    reader = CatalogReader(spec.name, root=str(root), split_seed=seed)
    check_line = f"check every image with: aape data check {spec.name} --root {root}"
    lines = []
    if reader.root.is_dir():
        try:
            splits = reader.read()
        except DataError as err:
            lines.append(f"{reader.root} exists but does not read yet: {err}")
        else:
            return Outcome(True, [f"{spec.name} is already in place: {_summary(reader, splits)}", check_line])
    if source.torchvision is None:
        return Outcome(False, [*lines, *instructions(spec.name, root)])
    download_root = Path(download_dir).expanduser().absolute() if download_dir else root / "_downloads" / spec.folder
    try:
        (downloader or torchvision_download)(spec.name, download_root)
    except Exception as err:  # noqa: BLE001 - any failure (network, checksum, removed source) -> the manual way
        log.debug("download failed", exc_info=True)
        failed = f"{spec.name}: download into {download_root} failed ({err})"
        return Outcome(False, [*lines, failed, *instructions(spec.name, root)])
    lines += [f"{spec.name}: downloaded into {download_root}", *lay_out(spec.name, download_root, reader.root, mode)]
    split = reader.split_path
    if split is not None and split.exists():
        lines.append(f"kept {split}")
    elif split is not None:
        sm.make_split_file(spec.make_split, reader.root, reader.image_path, split, seed)
        coop = next((s for s in source.steps if s.startswith(f"Download split_zhou_{spec.name}")), None)
        lines.append(f"made {split} (CoOp's recipe, seed {seed})")
        if coop:
            coop = coop.format(folder=reader.root)
            lines.append(f"  for numbers comparable with CoOp, delete it and d{coop[1:]}")
    lines += [f"{spec.name} ready: {_summary(reader, reader.read())}", check_line]
    return Outcome(True, lines)


def _summary(reader: CatalogReader, splits) -> str:
    return (
        f"{reader.root}, {len(splits.classnames)} classes, "
        f"train {len(splits.train)} / val {len(splits.val)} / test {len(splits.test)}"
    )
