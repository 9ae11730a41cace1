"""CoOp's benchmark datasets by name: a registry of on-disk facts and one reader for all of them.

Each dataset is one :class:`BenchmarkSpec` (folder, split file, image folder, template, class
name fixer, special reader): adding a dataset is adding an entry, not a branch. Names are
CoOp's dataset names (``DescribableTextures``, ``OxfordFlowers``, ...); folder names and a few
aliases (``dtd``, ``Flowers102``, ``imagenet-a``) are accepted too, case-insensitively.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Literal, get_args

from aape_lightning.data import split_maker as sm
from aape_lightning.data.items import DatasetSplits, Item
from aape_lightning.data.readers import IMAGE_SUFFIXES, CoOpSplitReader, DatasetReader
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)

BenchmarkName = Literal[
    "ImageNet",
    "Caltech101",
    "OxfordPets",
    "StanfordCars",
    "OxfordFlowers",
    "Food101",
    "FGVCAircraft",
    "SUN397",
    "DescribableTextures",
    "EuroSAT",
    "UCF101",
    "ImageNetV2",
    "ImageNetSketch",
    "ImageNetA",
    "ImageNetR",
]


# -- class-name fixers: what CoOp's files (or folders) say -> what the prompt says ----------
def spaced(name: str) -> str:
    """``car_side`` -> ``car side``."""
    return name.replace("_", " ").strip()


def lower_spaced(name: str) -> str:
    """``Abyssinian`` / ``apple_pie`` -> ``abyssinian`` / ``apple pie``."""
    return spaced(name).lower()


def as_is(name: str) -> str:
    return name.strip()


def renamed(mapping: dict[str, str]) -> Callable[[str], str]:
    """Folder names CoOp renames (Caltech101, EuroSAT); others pass through, spaced."""

    def fix(name: str) -> str:
        return spaced(mapping.get(name, name))

    return fix


def action_words(name: str) -> str:
    """UCF101: ``ApplyEyeMakeup`` or ``Apply_Eye_Makeup`` -> ``Apply Eye Makeup``."""
    if "_" in name or " " in name:
        return spaced(name)
    parts = re.findall(r"[A-Z][^A-Z]*", name)
    return " ".join(parts) if "".join(parts) == name else name


# -- the class an image's path implies (to catch a split that belongs to other folders) -----
def first_folder(fix: Callable[[str], str]) -> Callable[[str], str]:
    def of(relpath: str) -> str:
        return fix(relpath.split("/", 1)[0])

    return of


def pets_breed(relpath: str) -> str:
    """``american_bulldog_10.jpg`` -> ``american bulldog``."""
    return lower_spaced(Path(relpath).stem.rsplit("_", 1)[0])


def sun397_class(relpath: str) -> str:
    """``a/apartment_building/outdoor/sun_x.jpg`` -> ``outdoor apartment building``."""
    return spaced(sm.sun397_classname(relpath.rsplit("/", 1)[0]))


# -- the registry ------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkSpec:
    """Where one dataset lies in CoOp's layout and how its classes are named.

    ``image_dir`` is where the split file's relative paths start ("" = the dataset folder);
    ``make_split`` makes a missing split file (None: CoOp ships none or reads official lists);
    ``read`` replaces split-file reading for datasets without one (ImageNet family, FGVCAircraft).
    """

    name: str
    folder: str
    template: str
    image_dir: str = "images"
    split_file: str | None = None
    readable: Callable[[str], str] = spaced
    class_of_path: Callable[[str], str] | None = None
    make_split: sm.SplitMaker | None = None
    read: Callable[[BenchmarkReader], DatasetSplits] | None = None
    num_classes: int = 0
    evaluation_only: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def layout(self) -> str:
        """A one-line picture of the expected folder, for messages."""
        images = f"{self.folder}/{self.image_dir}/..." if self.image_dir else f"{self.folder}/..."
        return images + (f" and {self.folder}/{self.split_file}" if self.split_file else "")


def _read_imagenet(reader: BenchmarkReader) -> DatasetSplits:
    """``images/train/<wnid>/`` and ``images/val/<wnid>/``; val doubles as test, as in CoOp."""
    wnids, names = reader.imagenet_classes()
    label_of = {w: i for i, w in enumerate(wnids)}
    train = _class_folder_items(reader.image_path / "train", label_of, names)
    test = _class_folder_items(reader.image_path / "val", label_of, names)
    reader.imagenet_indices = list(range(len(wnids)))
    return reader.make_splits(train, test, test, names)


def _read_imagenet_v2(reader: BenchmarkReader) -> DatasetSplits:
    """``imagenetv2-matched-frequency-format-val/<0..999>/``: folder i is ImageNet class i."""
    _, names = reader.imagenet_classes()
    test = _class_folder_items(reader.image_path, {str(i): i for i in range(len(names))}, names)
    reader.imagenet_indices = list(range(len(names)))
    return reader.make_splits([], [], test, names)


def _read_imagenet_sketch(reader: BenchmarkReader) -> DatasetSplits:
    """``images/<wnid>/``, all 1000 ImageNet classes."""
    wnids, names = reader.imagenet_classes()
    test = _class_folder_items(reader.image_path, {w: i for i, w in enumerate(wnids)}, names)
    reader.imagenet_indices = list(range(len(wnids)))
    return reader.make_splits([], [], test, names)


def _read_imagenet_subset(reader: BenchmarkReader) -> DatasetSplits:
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


def _read_fgvc_aircraft(reader: BenchmarkReader) -> DatasetSplits:
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
            items.append(Item(str(image_dir / f"{image_id}.jpg"), label_of[variant], variant))
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


def _class_folder_items(folder: Path, label_of: dict[str, int], classnames: list[str]) -> list[Item]:
    """Images of ``folder/<class>/``; every folder must be a known class."""
    folders = _class_folders(folder)
    unknown = [f.name for f in folders if f.name not in label_of]
    if unknown:
        raise DataError(
            f"{folder}: folders {unknown[:5]} are not classes of classnames.txt; remove them or fix the file"
        )
    return [
        Item(str(f / n), label_of[f.name], classnames[label_of[f.name]]) for f in folders for n in sm.image_names(f)
    ]


_IMAGENET_TEMPLATE = "a photo of a {}."

BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("ImageNet", "imagenet", _IMAGENET_TEMPLATE, read=_read_imagenet, num_classes=1000),
        BenchmarkSpec(
            "Caltech101", "caltech-101", "a photo of a {}.", "101_ObjectCategories", "split_zhou_Caltech101.json",
            renamed(sm.CALTECH_RENAMED), first_folder(renamed(sm.CALTECH_RENAMED)), sm.caltech101, num_classes=100,
        ),
        BenchmarkSpec(
            "OxfordPets", "oxford_pets", "a photo of a {}, a type of pet.", "images", "split_zhou_OxfordPets.json",
            lower_spaced, pets_breed, sm.oxford_pets, num_classes=37, aliases=("OxfordIIITPet", "pets"),
        ),
        BenchmarkSpec(
            "StanfordCars", "stanford_cars", "a photo of a {}.", "", "split_zhou_StanfordCars.json",
            as_is, None, sm.stanford_cars, num_classes=196, aliases=("cars",),
        ),
        BenchmarkSpec(
            "OxfordFlowers", "oxford_flowers", "a photo of a {}, a type of flower.", "jpg",
            "split_zhou_OxfordFlowers.json", lower_spaced, None, sm.oxford_flowers, num_classes=102,
            aliases=("Flowers102", "flowers"),
        ),
        BenchmarkSpec(
            "Food101", "food-101", "a photo of {}, a type of food.", "images", "split_zhou_Food101.json",
            lower_spaced, first_folder(lower_spaced), sm.food101, num_classes=101, aliases=("food",),
        ),
        BenchmarkSpec(
            "FGVCAircraft", "fgvc_aircraft", "a photo of a {}, a type of aircraft.", "images",
            readable=as_is, read=_read_fgvc_aircraft, num_classes=100, aliases=("aircraft",),
        ),
        BenchmarkSpec(
            "SUN397", "sun397", "a photo of a {}.", "SUN397", "split_zhou_SUN397.json",
            spaced, sun397_class, sm.sun397, num_classes=397, aliases=("sun",),
        ),
        BenchmarkSpec(
            "DescribableTextures", "dtd", "{} texture.", "images", "split_zhou_DescribableTextures.json",
            spaced, first_folder(spaced), sm.describable_textures, num_classes=47, aliases=("textures",),
        ),
        BenchmarkSpec(
            "EuroSAT", "eurosat", "a centered satellite photo of {}.", "2750", "split_zhou_EuroSAT.json",
            renamed(sm.EUROSAT_RENAMED), first_folder(renamed(sm.EUROSAT_RENAMED)), sm.eurosat, num_classes=10,
        ),
        BenchmarkSpec(
            "UCF101", "ucf101", "a photo of a person doing {}.", "UCF-101-midframes", "split_zhou_UCF101.json",
            action_words, first_folder(action_words), sm.ucf101, num_classes=101,
        ),
        BenchmarkSpec(
            "ImageNetV2", "imagenetv2", _IMAGENET_TEMPLATE, "imagenetv2-matched-frequency-format-val",
            read=_read_imagenet_v2, num_classes=1000, evaluation_only=True,
        ),
        BenchmarkSpec(
            "ImageNetSketch", "imagenet-sketch", _IMAGENET_TEMPLATE, "images",
            read=_read_imagenet_sketch, num_classes=1000, evaluation_only=True,
        ),
        BenchmarkSpec(
            "ImageNetA", "imagenet-adversarial", _IMAGENET_TEMPLATE, "imagenet-a",
            read=_read_imagenet_subset, num_classes=200, evaluation_only=True,
        ),
        BenchmarkSpec(
            "ImageNetR", "imagenet-rendition", _IMAGENET_TEMPLATE, "imagenet-r",
            read=_read_imagenet_subset, num_classes=200, evaluation_only=True,
        ),
    )
}
assert list(BENCHMARKS) == list(get_args(BenchmarkName)), "BenchmarkName and BENCHMARKS disagree"

# The 11 datasets of the few-shot and base-to-new tables, and ImageNet's four shifted test sets.
FEW_SHOT_DATASETS = tuple(n for n, s in BENCHMARKS.items() if not s.evaluation_only)
DOMAIN_SHIFTS = tuple(n for n, s in BENCHMARKS.items() if s.evaluation_only)


def _key(text: str) -> str:
    return re.sub(r"[-_ ]", "", text).lower()


def benchmark(name: str) -> BenchmarkSpec:
    """The registry entry for a name, folder name or alias (case and ``-``/``_`` ignored)."""
    wanted = _key(name)
    for spec in BENCHMARKS.values():
        if wanted in {_key(spec.name), _key(spec.folder), *map(_key, spec.aliases)}:
            return spec
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(BENCHMARKS)} (or their CoOp folder names)")


class BenchmarkReader(DatasetReader):
    """One of CoOp's 15 benchmark datasets, by name, from CoOp's on-disk layout under ``root``.

    Returns absolute image paths, labels 0..n-1 and readable class names (what the template
    gets): underscores read as spaces; Caltech101's ``airplanes``/``Faces``/``Leopards``/
    ``Motorbikes`` -> ``airplane``/``face``/``leopard``/``motorbike``; EuroSAT's folders ->
    ``Annual Crop Land`` etc.; Flowers, Food and Pets lower-cased; UCF101 ``Apply Eye Makeup``;
    SUN397 ``outdoor apartment building`` (CoOp's "outdoor apartment_building": the
    indoor/outdoor qualifier first, underscores as spaces); StanfordCars ``2012 Tesla Model S
    Sedan``; ImageNet and its variants from ImageNet's ``classnames.txt`` (CLIP's names).

    A split file that is missing is made once by CoOp's recipe with ``split_seed`` and written
    next to the data (see :mod:`aape_lightning.data.split_maker`); an existing one is never
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
        name: BenchmarkName,
        root: str = "data",
        template: str | None = None,
        prompts: str | None = None,
        folder: str | None = None,
        split_file: str | None = None,
        image_dir: str | None = None,
        split_seed: int = 1,
        imagenet_root: str | None = None,
    ) -> None:
        self.spec = benchmark(name)
        self.data_root = Path(root).expanduser().absolute()
        super().__init__(str(self.data_root / (folder or self.spec.folder)), template or self.spec.template, prompts)
        self.split_file, self.image_dir, self.split_seed = split_file, image_dir, split_seed
        self.imagenet_root = imagenet_root
        self.imagenet_indices: list[int] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def evaluation_only(self) -> bool:
        """True for test-only sets (ImageNetV2, -Sketch, -A, -R): train and val are empty."""
        return self.spec.evaluation_only

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
        if not self.root.is_dir():
            raise DataError(
                f"{self.spec.name}: no dataset folder at {self.root} (expected {self.spec.layout} under "
                f"{self.data_root}); run `{self.prepare_command}` to download it or to see what to fetch, "
                f"or set the reader's root to the folder that holds {self.spec.folder}/"
            )

    def read(self) -> DatasetSplits:
        self._require_root()
        if self.spec.read is not None:
            return self.spec.read(self)
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

        def fixed(items: list[Item]) -> list[Item]:
            return [Item(it.path, it.label, names[it.label]) for it in items]

        return self.make_splits(fixed(splits.train), fixed(splits.val), fixed(splits.test), names)

    def make_splits(self, train: list[Item], val: list[Item], test: list[Item], classnames: list[str]) -> DatasetSplits:
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
