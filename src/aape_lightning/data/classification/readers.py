"""Classification dataset readers: one per on-disk layout, chosen in YAML by ``class_path``."""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt

from aape_lightning.data.classification.few_shot_cache import is_few_shot_folder
from aape_lightning.data.classification.records import DatasetSplits, LabelledImage
from aape_lightning.data.image_files import check_link, find_images
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


class DatasetReader:
    """Base class: ``read()`` returns the splits; readers do no image decoding.

    Args:
        root: the dataset's folder.
        template: the class template, one ``{}`` for the class name.
        prompts: a CuPL-format prompt file; relative paths are taken from ``root``;
            default ``root/prompts.json`` if present.
    """

    def __init__(self, root: str, template: str = "a photo of a {}.", prompts: str | None = None) -> None:
        self.root = Path(root).expanduser()
        self.template = template
        self.prompts = prompts

    @property
    def name(self) -> str:
        return self.root.name

    def _prompt_path(self) -> str | None:
        """The configured prompt file, else ``root/prompts.json`` when the dataset ships one."""
        if self.prompts is None:
            shipped = self.root / "prompts.json"
            return str(shipped) if shipped.is_file() else None
        path = Path(self.prompts).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    def prepare(self) -> None:
        """Download or generate the data if a reader can; runs once per node, before ``read``."""

    def read(self) -> DatasetSplits:
        raise NotImplementedError

    def _require_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise DataError(
                f"data root {self.root} is a file, not a folder; point the reader's root at the folder that holds "
                f"the dataset (CoOp layout: see data/README.md)"
            )
        if not self.root.is_dir():
            raise DataError(
                f"data root {self.root} does not exist; point the reader's root at the dataset folder "
                f"(CoOp layout: see data/README.md)"
            )


class CoOpSplitReader(DatasetReader):
    """CoOp's layout: ``root/<image_dir>/...`` and ``root/split_zhou_<Name>.json``.

    Args:
        root: the dataset's folder.
        split_file: the split JSON, relative to ``root``; ``None`` takes the one
            ``split_zhou_*.json`` found there.
        image_dir: the folder the split's relative paths start from.
        template: the class template.
        prompts: a CuPL-format prompt file (relative to ``root`` unless absolute).
        allow_outside_root: accept split rows whose image path leaves ``image_dir`` (absolute, or
            ``../``); by default such a row is an error naming it.
    """

    def __init__(
        self,
        root: str,
        split_file: str | None = None,
        image_dir: str = "images",
        template: str = "a photo of a {}.",
        prompts: str | None = None,
        allow_outside_root: bool = False,
    ) -> None:
        super().__init__(root, template, prompts)
        self.split_file = split_file
        self.image_dir = image_dir
        self.allow_outside_root = allow_outside_root

    def _split_path(self) -> Path:
        if self.split_file:
            path = self.root / self.split_file
            if not path.is_file():
                raise DataError(f"split file {path} does not exist; check split_file or the data root")
            return path
        found = sorted(self.root.glob("split_zhou_*.json"))
        if len(found) != 1:
            raise DataError(
                f"{self.root}: expected exactly one split_zhou_*.json, found {[p.name for p in found]}; "
                f"set split_file to the one to use"
            )
        return found[0]

    def read(self) -> DatasetSplits:
        self._require_root()
        path = self._split_path()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err})") from err
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not a text file ({err}); split_file must name CoOp's split JSON") from err
        # raw: {"train"|"val"|"test": [[relpath under image_dir, label, classname], ...]}
        if not isinstance(raw, dict):
            raise DataError(
                f'{path}: holds a {type(raw).__name__}, expected an object {{"train": [...], "val": [...], '
                f'"test": [...]}} as in CoOp\'s split files'
            )
        names: dict[int, str] = {}
        splits: dict[str, list[LabelledImage]] = {}
        for split in ("train", "val", "test"):
            if split not in raw:
                raise DataError(f'{path}: no "{split}" list; expected keys train, val, test')
            if not isinstance(raw[split], list):
                raise DataError(f'{path}: "{split}" is a {type(raw[split]).__name__}, expected a list of rows')
            items = []
            for i, row in enumerate(raw[split]):
                relpath, label, raw_name = _split_row(path, split, i, row)
                if not self.allow_outside_root and (os.path.isabs(relpath) or os.path.normpath(relpath).startswith("..")):
                    raise DataError(f'{path}: row {i} of "{split}" names {relpath!r}, outside {self.root / self.image_dir}; '
                                    "fix the row, or set allow_outside_root: true on the reader to read it")
                classname = raw_name.replace("_", " ")  # CoOp's prompt learner does this before building prompts
                if names.setdefault(label, classname) != classname:
                    raise DataError(
                        f"{path}: label {label} is named both {names[label]!r} and {classname!r}; fix the split"
                    )
                items.append(LabelledImage(str(self.root / self.image_dir / relpath), label, classname))
            splits[split] = items
        if sorted(names) != list(range(len(names))):
            raise DataError(f"{path}: labels are not 0..{len(names) - 1}: {sorted(names)[:10]}...")
        classnames = [names[i] for i in range(len(names))]
        missing = [it.path for it in splits["train"][:20] if not Path(it.path).is_file()]
        if missing:
            raise DataError(f"{path}: images listed but not found, e.g. {missing[0]}; check root and image_dir")
        return DatasetSplits(**splits, classnames=classnames, template=self.template, prompts=self._prompt_path())


def _split_row(path: Path, split: str, index: int, row: object) -> tuple[str, int, str]:
    """One ``[relpath, label, classname]`` row of a CoOp split file, checked; errors name the row and the fix."""
    where = f'{path}: row {index} of "{split}"'
    if not isinstance(row, list) or len(row) != 3:
        raise DataError(f"{where} is {row!r}, expected [image path, label, class name], e.g. "
                        f'["cat/1.jpg", 0, "cat"]; fix or remove that row')
    relpath, label, classname = row
    if isinstance(label, str) and label.strip().isdigit() or isinstance(label, float) and label.is_integer():
        label = int(label)
    if isinstance(label, bool) or not isinstance(label, int) or label < 0:
        raise DataError(f"{where} has label {label!r}, expected a whole number >= 0 (the class index); fix that row")
    if not isinstance(relpath, str) or not relpath or not isinstance(classname, str) or not classname.strip():
        raise DataError(f"{where} is {row!r}: the image path and the class name must be non-empty strings; "
                        f"fix that row")
    return relpath, label, classname


class ImageFolderReader(DatasetReader):
    """A plain folder ``root/<class>/<image>`` (or ``root/{train,val,test}/<class>/<image>``).

    Custom data needs no code: class names are the folder names with underscores read as
    spaces. Without split folders, each class is split by ``val_fraction`` / ``test_fraction``
    with ``seed``. A ``split_fewshot`` folder of few-shot files (written there by older
    versions) is not a class. Symlinks are followed inside ``root`` only (see ``image_files``).

    Args:
        root: the folder.
        template: the class template.
        prompts: a CuPL-format prompt file (relative to ``root`` unless absolute).
        val_fraction: share of each class for validation when there are no split folders.
        test_fraction: share of each class for test when there are no split folders.
        seed: the seed of that split.
        allow_outside_root: read what symlinks under ``root`` point to outside it (default: such a
            link is an error naming it); a link to a folder above itself is an error either way.
    """

    def __init__(
        self,
        root: str,
        template: str = "a photo of a {}.",
        prompts: str | None = None,
        val_fraction: ClosedUnitInterval = 0.2,
        test_fraction: ClosedUnitInterval = 0.3,
        seed: NonNegativeInt = 1,
        allow_outside_root: bool = False,
    ) -> None:
        super().__init__(root, template, prompts)
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.allow_outside_root = allow_outside_root

    def _images(self, folder: Path) -> list[Path]:
        return find_images(folder, self.root, self.allow_outside_root)

    def _classes(self, folder: Path) -> list[Path]:
        real_root = Path(os.path.realpath(self.root))
        for link in (p for p in folder.iterdir() if p.is_symlink()):
            check_link(link, real_root, self.allow_outside_root)
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not is_few_shot_folder(p))
        if not classes:
            raise DataError(
                f"{folder}: no class folders; expected {folder}/<class>/<image> (a flat folder of images has no labels)"
            )
        return classes

    def read(self) -> DatasetSplits:
        self._require_root()
        if all((self.root / s).is_dir() for s in ("train", "test")):
            self._classes(self.root)  # checks the links among the split folders too
            class_dirs = self._classes(self.root / "train")
            classnames = [d.name.replace("_", " ") for d in class_dirs]
            splits = {}
            for split in ("train", "val", "test"):
                base = self.root / split
                splits[split] = [
                    LabelledImage(str(p), k, classnames[k])
                    for k, d in enumerate(class_dirs)
                    if (base / d.name).is_dir()
                    for p in self._images(base / d.name)
                ]
            if not splits["val"]:
                log.info("%s: no val folder; validating on the test split", self.root)
                splits["val"] = splits["test"]
        else:
            class_dirs = self._classes(self.root)
            classnames = [d.name.replace("_", " ") for d in class_dirs]
            rng = random.Random(self.seed)
            splits = {"train": [], "val": [], "test": []}
            for k, d in enumerate(class_dirs):
                images = self._images(d)
                rng.shuffle(images)
                n_val, n_test = round(len(images) * self.val_fraction), round(len(images) * self.test_fraction)
                for split, chunk in (
                    ("val", images[:n_val]),
                    ("test", images[n_val : n_val + n_test]),
                    ("train", images[n_val + n_test :]),
                ):
                    splits[split] += [LabelledImage(str(p), k, classnames[k]) for p in sorted(chunk)]
        empty = [classnames[k] for k in range(len(classnames)) if not any(it.label == k for it in splits["train"])]
        if empty:
            raise DataError(f"{self.root}: classes with no training images: {empty}; add images or remove the folders")
        return DatasetSplits(**splits, classnames=classnames, template=self.template, prompts=self._prompt_path())
