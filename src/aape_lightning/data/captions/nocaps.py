"""NoCaps validation (captioning of novel objects): one test loader per domain, scored separately."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader

from aape_lightning.data.captions.datamodule import CaptionDataModule
from aape_lightning.data.captions.readers import CaptionReader
from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits
from aape_lightning.errors import DataError

log = logging.getLogger(__name__)

NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")


class NoCapsReader(CaptionReader):
    """``nocaps_val_4500_captions.json`` (COCO format, each image with a ``domain``) and its images.

    Splits are the domains: "in-domain", "near-domain", "out-domain" (10 captions per image).

    Args:
        root: the NoCaps folder.
        caption_file: the captions JSON, relative to ``root``.
        image_dir: the Open Images validation images, relative to ``root``.
        check_images: fail at once when an image file the JSON names is missing.
    """

    def __init__(
        self, root: str, caption_file: str = "nocaps_val_4500_captions.json", image_dir: str = "val", check_images: bool = True
    ) -> None:
        super().__init__(root)
        self.caption_file, self.image_dir, self.check_images = caption_file, image_dir, check_images

    def read(self) -> CaptionSplits:
        import json

        path = self._file(self.caption_file, "NoCaps captions file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            texts: dict[int, list[str]] = {}
            for a in data["annotations"]:
                texts.setdefault(a["image_id"], []).append(a["caption"].strip())
            splits: dict[str, list[CaptionedImage]] = {d: [] for d in NOCAPS_DOMAINS}
            for im in data["images"]:
                record = CaptionedImage(str(self.root / self.image_dir / im["file_name"]), tuple(texts.get(im["id"], ())),
                                        str(im["id"]))  # fmt: skip
                splits[im["domain"]].append(record)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not NoCaps' captions JSON with images (and their domain) and annotations ({err})") from err
        missing = [r.path for v in splits.values() for r in v if self.check_images and not Path(r.path).is_file()]
        if missing:
            raise DataError(f"{path} names {len(missing)} image(s) missing, e.g. {missing[0]}; unpack them or set image_dir")
        log.info("%s: %s", path, ", ".join(f"{k} {len(v)} images" for k, v in splits.items()))
        return CaptionSplits("NoCaps", splits)


class NoCapsDataModule(CaptionDataModule):
    """NoCaps for ``aape test`` (a model trained on COCO): one test loader per domain, named by ``test_sets``.

    Args: as CaptionDataModule's; ``max_captions`` defaults to all 10 of NoCaps.
    """

    test_sets = NOCAPS_DOMAINS

    def __init__(
        self,
        reader: CaptionReader | None = None,
        max_captions: PositiveInt | None = None,
        eval_batch_size: PositiveInt = 100,
        num_workers: NonNegativeInt = 2,
        predict_dir: str | None = None,
        on_bad_image: Literal["fail", "skip"] = "fail",
    ) -> None:
        super().__init__(reader, train_split="in-domain", val_split=None, test_split="in-domain", max_captions=max_captions,
                         eval_batch_size=eval_batch_size, num_workers=num_workers, predict_dir=predict_dir,
                         on_bad_image=on_bad_image)  # fmt: skip

    def test_dataloader(self) -> list[DataLoader]:
        return [self._caption_loader(domain, train=False) for domain in self.test_sets]
