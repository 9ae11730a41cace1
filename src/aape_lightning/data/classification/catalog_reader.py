"""Reads any catalogued dataset from CoOp's layout; special readers for those without a split file (ImageNet, ...)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import chain
from pathlib import Path

from jsonargparse.typing import NonNegativeInt

from aape_lightning.data.classification import split_maker as sm
from aape_lightning.data.classification.catalog import CATALOG, DatasetName, SpecialReader, catalog_entry
from aape_lightning.data.classification.readers import CoOpSplitReader, DatasetReader
from aape_lightning.data.classification.records import DatasetSplits, LabelledImage
from aape_lightning.data.image_files import IMAGE_SUFFIXES
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


# -- the special readers: datasets read from their own lists or class folders ----------------
def _read_imagenet(reader: CatalogReader) -> DatasetSplits:
    """``images/train/<wnid>/`` and ``images/val/<wnid>/``; val doubles as test, as in CoOp."""
    wnids, names = reader.imagenet_classes()
    label_of = {w: i for i, w in enumerate(wnids)}
    train = _class_folder_items(reader.image_path / "train", label_of, names)
    test = _class_folder_items(reader.image_path / "val", label_of, names)
    reader.imagenet_indices = list(range(len(wnids)))
    return reader.make_splits(train, test, test, names)


def _read_imagenet_v2(reader: CatalogReader) -> DatasetSplits:
    """``imagenetv2-matched-frequency-format-val/<0..999>/``: folder i is ImageNet class i."""
    _, names = reader.imagenet_classes()
    test = _class_folder_items(reader.image_path, {str(i): i for i in range(len(names))}, names)
    reader.imagenet_indices = list(range(len(names)))
    return reader.make_splits([], [], test, names)


def _read_imagenet_sketch(reader: CatalogReader) -> DatasetSplits:
    """``images/<wnid>/``, all 1000 ImageNet classes."""
    wnids, names = reader.imagenet_classes()
    test = _class_folder_items(reader.image_path, {w: i for i, w in enumerate(wnids)}, names)
    reader.imagenet_indices = list(range(len(wnids)))
    return reader.make_splits([], [], test, names)


def _read_imagenet_subset(reader: CatalogReader) -> DatasetSplits:
    """``imagenet-a/<wnid>/`` or ``imagenet-r/<wnid>/``: the classes present (200), labelled in wnid order.

    ``reader.imagenet_indices[label]`` is the ImageNet class index of each label.
    """
    wnids, names = reader.imagenet_classes()
    imagenet_label = {w: i for i, w in enumerate(wnids)}
    present = [f.name for f in _class_folders(reader.image_path)]
    unknown = [w for w in present if w not in imagenet_label]
    if unknown:
        raise DataError(
            f"{reader.image_path}: folders {unknown[:5]} are not ImageNet classes (wnids of classnames.txt)"
        )
    indices = [imagenet_label[w] for w in present]
    subset_names = [names[i] for i in indices]
    if reader.spec.num_classes and len(present) != reader.spec.num_classes:
        log.warning("%s: %d class folders, expected %d", reader.image_path, len(present), reader.spec.num_classes)
    test = _class_folder_items(reader.image_path, {w: k for k, w in enumerate(present)}, subset_names)
    reader.imagenet_indices = indices
    return reader.make_splits([], [], test, subset_names)


def _read_fgvc_aircraft(reader: CatalogReader) -> DatasetSplits:
    """``variants.txt`` and ``images_variant_{train,val,test}.txt`` (lines ``1025794 707-320``).

    CoOp's folder is the archive's ``data/`` renamed to ``fgvc_aircraft/``; an unrenamed
    ``fgvc_aircraft/data/`` is accepted too (the first of the two holding ``variants.txt``).
    """
    lists = next((d for d in (reader.root, reader.root / "data") if (d / "variants.txt").is_file()), None)
    if lists is None:
        raise DataError(
            f"{reader.root}: no variants.txt (looked in {reader.root} and {reader.root / 'data'}); CoOp's "
            f"fgvc_aircraft/ is the data/ folder of fgvc-aircraft-2013b.tar.gz"
        )
    image_dir = reader.root / reader.image_dir if reader.image_dir is not None else lists / "images"
    classnames = sm.text_lines(lists / "variants.txt")
    label_of = {c: i for i, c in enumerate(classnames)}
    splits = {}
    for split in ("train", "val", "test"):
        items = []
        for line in sm.text_lines(lists / f"images_variant_{split}.txt"):
            image_id, _, variant = line.partition(" ")
            if variant not in label_of:
                raise DataError(f"{lists}/images_variant_{split}.txt: variant {variant!r} is not in variants.txt")
            items.append(LabelledImage(str(image_dir / f"{image_id}.jpg"), label_of[variant], variant))
        splits[split] = items
    return reader.make_splits(splits["train"], splits["val"], splits["test"], classnames)


def _class_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder} is missing; expected {folder}/<class folder>/<image>")
    folders = sorted(p for p in folder.iterdir() if p.is_dir())
    if not folders:
        flat = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        hint = (
            f"; it holds {flat} images directly: sort them into one folder per class (for ImageNet's val, "
            f"by LOC_val_solution.csv or the usual valprep.sh)"
            if flat
            else ""
        )
        raise DataError(f"{folder}: no class folders{hint}")
    return folders


def _class_folder_items(folder: Path, label_of: dict[str, int], classnames: list[str]) -> list[LabelledImage]:
    """Images of ``folder/<class>/``; every folder must be a known class."""
    folders = _class_folders(folder)
    unknown = [f.name for f in folders if f.name not in label_of]
    if unknown:
        raise DataError(
            f"{folder}: folders {unknown[:5]} are not classes of classnames.txt; remove them or fix the file"
        )
    return [
        LabelledImage(str(f / n), label_of[f.name], classnames[label_of[f.name]])
        for f in folders
        for n in sm.image_names(f)
    ]


SPECIAL_READERS: dict[SpecialReader, Callable[[CatalogReader], DatasetSplits]] = {
    "imagenet": _read_imagenet,
    "imagenet_v2": _read_imagenet_v2,
    "imagenet_sketch": _read_imagenet_sketch,
    "imagenet_subset": _read_imagenet_subset,
    "fgvc_aircraft": _read_fgvc_aircraft,
}
assert {s.special_reader for s in CATALOG.values()} - {None} <= set(SPECIAL_READERS), "an unknown special reader"


class CatalogReader(DatasetReader):
    """One of the catalog's 15 datasets (CoOp's), by name, from CoOp's on-disk layout under ``root``.

    Returns absolute image paths, labels 0..n-1 and readable class names (what the template
    gets): underscores read as spaces; Caltech101's ``airplanes``/``Faces``/``Leopards``/
    ``Motorbikes`` -> ``airplane``/``face``/``leopard``/``motorbike``; EuroSAT's folders ->
    ``Annual Crop Land`` etc.; Flowers, Food and Pets lower-cased; UCF101 ``Apply Eye Makeup``;
    SUN397 ``outdoor apartment building`` (CoOp's "outdoor apartment_building": the
    indoor/outdoor qualifier first, underscores as spaces); StanfordCars ``2012 Tesla Model S
    Sedan``; ImageNet and its variants from ImageNet's ``classnames.txt`` (CLIP's names).

    A split file that is missing is made once by CoOp's recipe with ``split_seed`` and written
    next to the data (see :mod:`aape_lightning.data.classification.split_maker`); an existing one is never
    replaced. ImageNet has no split file: ``images/val`` is both val and test, as in CoOp.
    ImageNetV2, -Sketch, -A and -R are evaluation only (empty train and val). ImageNet-A and
    -R hold 200 ImageNet classes: after ``read()``, ``imagenet_indices[label]`` is the
    ImageNet class index of each label (identity for the other ImageNet sets, None otherwise).

    Args:
        name: the dataset, by CoOp's name (``DescribableTextures``, ``OxfordFlowers``, ...).
        root: the parent data folder; the dataset is ``root/<CoOp folder>`` (``data/dtd``).
        template: the class template; default CoOp's/CLIP's for this dataset.
        prompts: a CuPL-format prompt file (relative to the dataset folder unless absolute);
            default ``<dataset folder>/prompts.json`` if present.
        folder: the dataset folder under ``root`` if not CoOp's name for it.
        split_file: the split file (relative to the dataset folder unless absolute) if not
            ``split_zhou_<Name>.json``; a writable path here also takes a made split.
        image_dir: where images (and the split's relative paths) start, relative to the
            dataset folder, if not CoOp's (``images``, ``jpg``, ``2750``, ...).
        split_seed: the seed of a split file made because none was there.
        imagenet_root: a folder holding (or the path of) ImageNet's ``classnames.txt``; default
            ``<dataset folder>/classnames.txt``, else ``root/imagenet/classnames.txt``.
    """

    def __init__(
        self,
        name: DatasetName,
        root: str = "data",
        template: str | None = None,
        prompts: str | None = None,
        folder: str | None = None,
        split_file: str | None = None,
        image_dir: str | None = None,
        split_seed: NonNegativeInt = 1,
        imagenet_root: str | None = None,
    ) -> None:
        self.spec = catalog_entry(name)
        self.data_root = Path(root).expanduser().absolute()
        super().__init__(str(self.data_root / (folder or self.spec.folder)), template or self.spec.template, prompts)
        self.split_file, self.image_dir, self.split_seed = split_file, image_dir, split_seed
        self.imagenet_root = imagenet_root
        self.imagenet_indices: list[int] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def image_path(self) -> Path:
        return self.root / (self.image_dir if self.image_dir is not None else self.spec.image_dir)

    @property
    def split_path(self) -> Path | None:
        """The split file this dataset is read from (None for datasets read from their own lists)."""
        split_file = self.split_file or self.spec.split_file
        return None if split_file is None else self.root / Path(split_file).expanduser()

    @property
    def prepare_command(self) -> str:
        return f"aape data prepare {self.spec.name} --root {self.data_root}"

    def _require_root(self) -> None:
        for path, what in ((self.data_root, "the data root"), (self.root, f"{self.spec.name}'s dataset folder")):
            if path.exists() and not path.is_dir():
                raise DataError(
                    f"{self.spec.name}: {what} {path} is a file, not a folder; set the reader's root to the folder "
                    f"that holds {self.spec.folder}/ (expected {self.spec.layout} under it)"
                )
        if not self.root.is_dir():
            raise DataError(
                f"{self.spec.name}: no dataset folder at {self.root} (expected {self.spec.layout} under "
                f"{self.data_root}); run `{self.prepare_command}` to download it or to see what to fetch, "
                f"or set the reader's root to the folder that holds {self.spec.folder}/"
            )

    def read(self) -> DatasetSplits:
        self._require_root()
        if self.spec.special_reader is not None:
            return SPECIAL_READERS[self.spec.special_reader](self)
        path = self.split_path
        if not path.is_file():
            if self.spec.make_split is None:
                raise DataError(f"{self.spec.name}: split file {path} is missing; run `{self.prepare_command}`")
            sm.make_split_file(self.spec.make_split, self.root, self.image_path, path, self.split_seed)
        splits = CoOpSplitReader(
            str(self.root), split_file=str(path), image_dir=str(self.image_path),
            template=self.template, prompts=self.prompts,
        ).read()
        self._check_class_folders(splits, path)
        names = [self.spec.readable(n) for n in splits.classnames]

        def fixed(items: list[LabelledImage]) -> list[LabelledImage]:
            return [LabelledImage(it.path, it.label, names[it.label]) for it in items]

        return self.make_splits(fixed(splits.train), fixed(splits.val), fixed(splits.test), names)

    def make_splits(
        self, train: list[LabelledImage], val: list[LabelledImage], test: list[LabelledImage], classnames: list[str]
    ) -> DatasetSplits:
        """The reader's result, with its template and prompt file."""
        return DatasetSplits(train, val, test, list(classnames), template=self.template, prompts=self._prompt_path())

    def _check_class_folders(self, splits: DatasetSplits, path: Path) -> None:
        """A split whose class names disagree with its images' folders belongs to another copy of the data."""
        if self.spec.class_of_path is None:
            return
        prefix = len(str(self.image_path)) + 1
        wrong: dict[int, tuple[str, str, str]] = {}
        for it in chain(splits.train, splits.val, splits.test):
            if it.label in wrong:
                continue
            relpath = it.path[prefix:]
            implied, named = self.spec.class_of_path(relpath), self.spec.readable(it.classname)
            if implied != named:
                wrong[it.label] = (named, implied, relpath)
        if wrong:
            listed = "; ".join(
                f"label {k} is {a!r} in the split but its images are in the folder of {b!r} ({rel})"
                for k, (a, b, rel) in sorted(wrong.items())[:5]
            )
            raise DataError(
                f"{path}: class names disagree with the image folders for {len(wrong)} classes: {listed}. "
                f"Use the split file that came with these images (CoOp's split_zhou files), or delete it to "
                f"make a new one (seed {self.split_seed})"
            )

    def imagenet_classes(self) -> tuple[list[str], list[str]]:
        """ImageNet's wnids and class names, in label order, from ``classnames.txt`` (``n01440764 tench``)."""
        if self.imagenet_root is not None:
            given = Path(self.imagenet_root).expanduser()
            candidates = [given / "classnames.txt" if given.is_dir() else given]
        else:
            candidates = [self.root / "classnames.txt", self.data_root / "imagenet" / "classnames.txt"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DataError(
                f"{self.spec.name} needs ImageNet's class names: no classnames.txt at "
                f"{' or '.join(map(str, dict.fromkeys(candidates)))}. Put CoOp's classnames.txt "
                f"(lines 'n01440764 tench'; `aape data prepare ImageNet --root {self.data_root}` says where to get "
                f"it) at {self.data_root / 'imagenet' / 'classnames.txt'}, or set imagenet_root"
            )
        wnids, names = [], []
        for line in sm.text_lines(path):
            wnid, _, classname = line.partition(" ")
            if not classname.strip():
                raise DataError(f"{path}: line {line!r} is not '<wnid> <class name>'")
            wnids.append(wnid)
            names.append(classname.strip())
        if len(set(wnids)) != len(wnids):
            raise DataError(f"{path}: a wnid appears twice; each line must be one class")
        return wnids, names
