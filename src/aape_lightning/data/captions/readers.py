"""Caption dataset readers: Karpathy's split JSON (COCO, Flickr30k); the demo world's is in ``demo/readers.py``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


class CaptionReader:
    """Base class: ``read()`` returns the splits; readers decode no image.

    Args:
        root: the dataset's folder.
    """

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()

    @property
    def name(self) -> str:
        return self.root.name

    def prepare(self) -> None:
        """Generate the data if the reader can; runs once per node, before ``read``."""

    def read(self) -> CaptionSplits:
        raise NotImplementedError

    def _file(self, relative: str, what: str) -> Path:
        path = self.root / relative
        if not path.is_file():
            raise DataError(f"{what} {path} does not exist; see data/README.md (section Captions) for the layout")
        return path


_KARPATHY = {  # dataset -> (split file, image folder) as data/README.md lays them out
    "coco": ("dataset_coco.json", "images"),
    "flickr30k": ("dataset_flickr30k.json", "flickr30k-images"),
}


class KarpathyReader(CaptionReader):
    """Karpathy's split file (``dataset_coco.json``, ``dataset_flickr30k.json``) and the images it names.

    Each entry ``{"filepath"?, "filename", "split", "sentences": [{"raw"}], "cocoid"?}`` becomes one
    image with its captions at ``root/<image_dir>/[filepath/]filename``. COCO's 5k test and
    Flickr30k's 1k test are the file's ``"test"`` split.

    Args:
        root: the dataset folder (``data/coco``, ``data/flickr30k``).
        dataset: which layout's defaults to use.
        split_file: the Karpathy JSON, relative to ``root``; default per dataset.
        image_dir: the image folder, relative to ``root``; default per dataset.
        restval_as_train: count COCO's "restval" images as training images (the usual 113k train).
        check_images: fail at once when an image file the JSON names is missing (one stat per image).
    """

    def __init__(
        self,
        root: str,
        dataset: Literal["coco", "flickr30k"] = "coco",
        split_file: str | None = None,
        image_dir: str | None = None,
        restval_as_train: bool = True,
        check_images: bool = True,
    ) -> None:
        super().__init__(root)
        if dataset not in _KARPATHY:
            raise DataError(f"KarpathyReader: dataset {dataset!r} is not one of {sorted(_KARPATHY)}")
        self.dataset = dataset
        self.split_file = split_file or _KARPATHY[dataset][0]
        self.image_dir = image_dir or _KARPATHY[dataset][1]
        self.restval_as_train, self.check_images = restval_as_train, check_images

    def read(self) -> CaptionSplits:
        path = self._file(self.split_file, "Karpathy split file")
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["images"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a Karpathy split file with an 'images' list ({err})") from err
        images = self.root / self.image_dir
        splits: dict[str, list[CaptionedImage]] = {}
        for entry in entries:
            split = "train" if entry["split"] == "restval" and self.restval_as_train else entry["split"]
            file = images / entry.get("filepath", "") / entry["filename"]
            texts = tuple(s["raw"].strip() for s in entry["sentences"])
            image_id = str(entry.get("cocoid", entry["filename"]))
            splits.setdefault(split, []).append(CaptionedImage(str(file), texts, image_id))
        if self.check_images:
            missing = [r.path for records in splits.values() for r in records if not Path(r.path).is_file()]
            if missing:
                raise DataError(
                    f"{path} names {len(missing)} image(s) missing under {images}, e.g. {missing[0]}; "
                    f"unpack the images there (data/README.md, section Captions) or set image_dir"
                )
        log.info("%s: %s", path, ", ".join(f"{k} {len(v)} images" for k, v in splits.items()))
        return CaptionSplits(self.dataset, splits)
