"""The paper's datasets by name: where each lies in CoOp's layout and how its classes are named.

Each dataset is one :class:`DatasetSpec` (folder, split file, image folder, template, class
name fixer, special reader): adding a dataset is adding an entry, not a branch. Names are
CoOp's dataset names (``DescribableTextures``, ``OxfordFlowers``, ...); folder names and a few
aliases (``dtd``, ``Flowers102``, ``imagenet-a``) are accepted too, case-insensitively.
:class:`~aape_lightning.data.classification.catalog_reader.CatalogReader` reads an entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from aape_lightning.data.classification import split_maker as sm
from aape_lightning.errors import DataError
from aape_lightning.prompts.keys import dataset_key

DatasetName = Literal[
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

# The readers (in catalog_reader) of datasets that have no split file.
SpecialReader = Literal["imagenet", "imagenet_v2", "imagenet_sketch", "imagenet_subset", "fgvc_aircraft"]


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
class DatasetSpec:
    """Where one dataset lies in CoOp's layout and how its classes are named.

    ``image_dir`` is where the split file's relative paths start ("" = the dataset folder);
    ``make_split`` makes a missing split file (None: CoOp ships none or reads official lists);
    ``special_reader`` names the reader that replaces split-file reading for datasets without
    one (ImageNet family, FGVCAircraft).
    """

    name: str
    folder: str
    template: str
    image_dir: str = "images"
    split_file: str | None = None
    readable: Callable[[str], str] = spaced
    class_of_path: Callable[[str], str] | None = None
    make_split: sm.SplitMaker | None = None
    special_reader: SpecialReader | None = None
    num_classes: int = 0
    evaluation_only: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def layout(self) -> str:
        """A one-line picture of the expected folder, for messages."""
        images = f"{self.folder}/{self.image_dir}/..." if self.image_dir else f"{self.folder}/..."
        return images + (f" and {self.folder}/{self.split_file}" if self.split_file else "")


_IMAGENET_TEMPLATE = "a photo of a {}."

CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("ImageNet", "imagenet", _IMAGENET_TEMPLATE, special_reader="imagenet", num_classes=1000),
        DatasetSpec(
            "Caltech101", "caltech-101", "a photo of a {}.", "101_ObjectCategories", "split_zhou_Caltech101.json",
            renamed(sm.CALTECH_RENAMED), first_folder(renamed(sm.CALTECH_RENAMED)), sm.caltech101, num_classes=100,
        ),
        DatasetSpec(
            "OxfordPets", "oxford_pets", "a photo of a {}, a type of pet.", "images", "split_zhou_OxfordPets.json",
            lower_spaced, pets_breed, sm.oxford_pets, num_classes=37, aliases=("OxfordIIITPet", "pets"),
        ),
        DatasetSpec(
            "StanfordCars", "stanford_cars", "a photo of a {}.", "", "split_zhou_StanfordCars.json",
            as_is, None, sm.stanford_cars, num_classes=196, aliases=("cars",),
        ),
        DatasetSpec(
            "OxfordFlowers", "oxford_flowers", "a photo of a {}, a type of flower.", "jpg",
            "split_zhou_OxfordFlowers.json", lower_spaced, None, sm.oxford_flowers, num_classes=102,
            aliases=("Flowers102", "flowers"),
        ),
        DatasetSpec(
            "Food101", "food-101", "a photo of {}, a type of food.", "images", "split_zhou_Food101.json",
            lower_spaced, first_folder(lower_spaced), sm.food101, num_classes=101, aliases=("food",),
        ),
        DatasetSpec(
            "FGVCAircraft", "fgvc_aircraft", "a photo of a {}, a type of aircraft.", "images",
            readable=as_is, special_reader="fgvc_aircraft", num_classes=100, aliases=("aircraft",),
        ),
        DatasetSpec(
            "SUN397", "sun397", "a photo of a {}.", "SUN397", "split_zhou_SUN397.json",
            spaced, sun397_class, sm.sun397, num_classes=397, aliases=("sun",),
        ),
        DatasetSpec(
            "DescribableTextures", "dtd", "{} texture.", "images", "split_zhou_DescribableTextures.json",
            spaced, first_folder(spaced), sm.describable_textures, num_classes=47, aliases=("textures",),
        ),
        DatasetSpec(
            "EuroSAT", "eurosat", "a centered satellite photo of {}.", "2750", "split_zhou_EuroSAT.json",
            renamed(sm.EUROSAT_RENAMED), first_folder(renamed(sm.EUROSAT_RENAMED)), sm.eurosat, num_classes=10,
        ),
        DatasetSpec(
            "UCF101", "ucf101", "a photo of a person doing {}.", "UCF-101-midframes", "split_zhou_UCF101.json",
            action_words, first_folder(action_words), sm.ucf101, num_classes=101,
        ),
        DatasetSpec(
            "ImageNetV2", "imagenetv2", _IMAGENET_TEMPLATE, "imagenetv2-matched-frequency-format-val",
            special_reader="imagenet_v2", num_classes=1000, evaluation_only=True,
        ),
        DatasetSpec(
            "ImageNetSketch", "imagenet-sketch", _IMAGENET_TEMPLATE, "images",
            special_reader="imagenet_sketch", num_classes=1000, evaluation_only=True,
        ),
        DatasetSpec(
            "ImageNetA", "imagenet-adversarial", _IMAGENET_TEMPLATE, "imagenet-a",
            special_reader="imagenet_subset", num_classes=200, evaluation_only=True,
        ),
        DatasetSpec(
            "ImageNetR", "imagenet-rendition", _IMAGENET_TEMPLATE, "imagenet-r",
            special_reader="imagenet_subset", num_classes=200, evaluation_only=True,
        ),
    )
}
assert list(CATALOG) == list(get_args(DatasetName)), "DatasetName and CATALOG disagree"


def catalog_entry(name: str) -> DatasetSpec:
    """The catalog entry for a name, folder name or alias (case and ``-``/``_`` ignored)."""
    wanted = dataset_key(name)
    for spec in CATALOG.values():
        if wanted in {dataset_key(spec.name), dataset_key(spec.folder), *map(dataset_key, spec.aliases)}:
            return spec
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(CATALOG)} (or their CoOp folder names)")


def catalog_name(name: str) -> str:
    """The catalog's spelling of a dataset name, folder name or alias ("dtd" -> "DescribableTextures"); a name the
    catalog does not hold, as given (what prompts' shipped mappings and published banks are named by)."""
    try:
        return catalog_entry(name).name
    except DataError:
        return name


def known(root: str | Path) -> Iterable[tuple[str, str, bool]]:
    """(name, folder, present under root) for every catalogued dataset."""
    root = Path(root).expanduser()
    for spec in CATALOG.values():
        yield spec.name, spec.folder, (root / spec.folder).is_dir()
