"""VQA readers: VQAv2's questions + annotations JSON with COCO images (the demo world's is in ``demo/readers.py``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aape_lightning.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VQAQuestion:
    """One question about one image (an ``ImageRecord``), its human answers and the image's captions."""

    path: str  # absolute image path
    question: str
    answers: tuple[str, ...]  # the 10 human answers (VQAv2)
    question_id: str
    captions: tuple[str, ...] = ()  # the image's captions: the AAPE's reference prompts in training
    label: int = -1

    @property
    def answer(self) -> str:
        """The most frequent human answer (ties: the first given), the training target."""
        return Counter(self.answers).most_common(1)[0][0]


class VQAReader:
    """Base class: ``read()`` returns ``{split: [VQAQuestion]}``.

    Args:
        root: the dataset's folder.
    """

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()

    def prepare(self) -> Path | None:
        """Generate the data if the reader can; runs once per node."""

    def read(self) -> dict[str, list[VQAQuestion]]:
        raise NotImplementedError

    def _json(self, relative: str, what: str) -> dict | list:
        path = self.root / relative
        if not path.is_file():
            raise DataError(f"{what} {path} does not exist; see data/README.md (section VQA) for the layout")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err}); download the file again") from err


class VQAv2Reader(VQAReader):
    """VQAv2 as released: ``v2_OpenEnded_mscoco_<split>_questions.json``, ``v2_mscoco_<split>_annotations.json``
    and COCO images ``<split>/COCO_<split>_<image_id:012d>.jpg`` under ``root``; COCO's
    ``annotations/captions_<split>.json``, where present, gives each image its captions.

    Args:
        root: the VQAv2 folder.
        splits: the splits to read ("train2014", "val2014").
    """

    def __init__(self, root: str, splits: list[str] | None = None) -> None:
        super().__init__(root)
        self.splits = splits or ["train2014", "val2014"]

    def read(self) -> dict[str, list[VQAQuestion]]:
        out = {}
        for split in self.splits:
            questions = self._json(f"v2_OpenEnded_mscoco_{split}_questions.json", "VQAv2 questions file")["questions"]
            annotations = self._json(f"v2_mscoco_{split}_annotations.json", "VQAv2 annotations file")["annotations"]
            answers = {a["question_id"]: tuple(x["answer"] for x in a["answers"]) for a in annotations}
            captions: dict[int, list[str]] = {}
            if (self.root / f"annotations/captions_{split}.json").is_file():
                for c in self._json(f"annotations/captions_{split}.json", "COCO captions file")["annotations"]:
                    captions.setdefault(c["image_id"], []).append(c["caption"].strip())
            out[split] = [
                VQAQuestion(str(self.root / split / f"COCO_{split}_{q['image_id']:012d}.jpg"), q["question"],
                            answers[q["question_id"]], str(q["question_id"]), tuple(captions.get(q["image_id"], ())))
                for q in questions if q["question_id"] in answers
            ]  # fmt: skip
            log.info("VQAv2 %s: %d questions", split, len(out[split]))
        return out
