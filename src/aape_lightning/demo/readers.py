"""The demo world's readers: each reads its demo data like the real data it stands for, generating it first when absent
or stale (classification in CoOp's layout, captioned scenes, questions about them).

They live with the demo world, above the data layer, and are found the way any reader is: by ``class_path``
(``class_path: DemoReader``; the CLI loads ``aape_lightning.demo`` among its plugin packages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveInt

from aape_lightning.data.captions.readers import CaptionReader
from aape_lightning.data.captions.records import CaptionedImage, CaptionSplits
from aape_lightning.data.classification.readers import CoOpSplitReader
from aape_lightning.data.classification.records import DatasetSplits
from aape_lightning.data.vqa.readers import VQAQuestion, VQAReader
from aape_lightning.demo.datasets import DEMO_DATASETS, PROMPT_NOISE, ensure_demo_captions, ensure_demo_dataset
from aape_lightning.demo.world import DOMAINS
from aape_lightning.errors import DataError


class DemoReader(CoOpSplitReader):
    """A demo-world dataset in CoOp's layout under ``root/<name>`` (generated in seconds, offline).

    Args:
        name: the demo dataset.
        root: the folder that holds the demo datasets.
        seed: the generator's seed (another seed is another dataset).
        template: the class template; default the dataset's own.
        prompts: a CuPL-format prompt file; default the dataset's ``prompts.json``.
        prompt_noise: the LLM-style faults in the generated ``prompts.json`` (0: descriptions only;
            1.0: per class 2 near-duplicates, 1-2 vague lines and for concepts an irrelevant fact;
            2.0: twice that). Another value regenerates the dataset folder.
    """

    def __init__(
        self,
        name: Literal["DemoShapes", "DemoSketch", "DemoSatellite"] = "DemoShapes",
        root: str = "data/demo",
        seed: NonNegativeInt = 0,
        template: str | None = None,
        prompts: str | None = None,
        prompt_noise: NonNegativeFloat = PROMPT_NOISE,
    ) -> None:
        if name not in DEMO_DATASETS:
            raise DataError(f"unknown demo dataset {name!r}; known: {sorted(DEMO_DATASETS)}")
        if prompt_noise < 0:
            raise DataError(f"DemoReader: prompt_noise={prompt_noise} must be >= 0 (0: no LLM-style faults)")
        self.demo_name, self.demo_root, self.demo_seed = name, Path(root).expanduser(), seed
        self.prompt_noise = prompt_noise
        super().__init__(str(self.demo_root / name), template=template or DEMO_DATASETS[name].template, prompts=prompts)

    def prepare(self) -> None:
        ensure_demo_dataset(self.demo_name, self.demo_root, seed=self.demo_seed, noise=self.prompt_noise)

    def read(self) -> DatasetSplits:
        self.prepare()  # cheap when present and current (manifest check); makes read() work alone too
        return super().read()


class DemoCaptionReader(CaptionReader):
    """The demo world's captioned scenes (``DemoCaptions``: 5 captions each), generated on first use.

    Args:
        root: the folder that holds the demo datasets.
        seed: the generator's seed (another seed is another set of scenes and captions).
        domains: draw scenes from these demo domains only (e.g. ``[sketch]``); default every
            domain. A subset is written to its own folder, ``DemoCaptions-<domains>``.
        n_train: training images to generate.
        n_test: test images to generate.
        val_from_train: the last this-many training images form the "val" split instead.
    """

    def __init__(
        self,
        root: str = "data/demo",
        seed: NonNegativeInt = 0,
        domains: list[str] | None = None,
        n_train: PositiveInt = 600,
        n_test: PositiveInt = 200,
        val_from_train: NonNegativeInt = 0,
    ) -> None:
        super().__init__(root)
        unknown = sorted(set(domains or ()) - set(DOMAINS))
        if unknown:
            raise DataError(f"DemoCaptionReader: unknown domain(s) {unknown}; pick from {list(DOMAINS)}")
        self.seed, self.domains, self.n_train, self.n_test = seed, domains, n_train, n_test
        self.val_from_train = val_from_train
        self._folder: Path | None = None

    @property
    def name(self) -> str:
        return "DemoCaptions" + (f"-{'+'.join(self.domains)}" if self.domains else "")

    def prepare(self) -> None:
        self._folder = ensure_demo_captions(
            self.root, seed=self.seed, n_train=self.n_train, n_test=self.n_test, domains=self.domains
        )

    def read(self) -> CaptionSplits:
        self.prepare()  # cheap when present and current (manifest check)
        folder = self._folder
        splits: dict[str, list[CaptionedImage]] = {}
        for entry in json.loads((folder / "captions.json").read_text(encoding="utf-8")):
            record = CaptionedImage(str(folder / "images" / entry["image"]), tuple(entry["captions"]), entry["image"])
            splits.setdefault(entry["split"], []).append(record)
        if self.val_from_train:
            train = splits.get("train", [])
            splits["train"], splits["val"] = train[: -self.val_from_train], train[-self.val_from_train :]
        return CaptionSplits(self.name, splits)


class DemoVQAReader(VQAReader):
    """The demo world's questions (``DemoCaptions/qa.json``, 3 per image), generated on first use.

    A demo question lists its accepted spellings ("two", "2"), not 10 human answers; they are
    repeated to 10 (as if 10 people had answered alike), so a correct answer scores 1.

    Args:
        root: the folder that holds the demo datasets.
        seed: the generator's seed.
        n_train: training images to generate (3 questions each).
        n_test: test images to generate.
    """

    def __init__(self, root: str = "data/demo", seed: NonNegativeInt = 0, n_train: PositiveInt = 600, n_test: PositiveInt = 200) -> None:
        super().__init__(root)
        self.seed, self.n_train, self.n_test = seed, n_train, n_test

    def prepare(self) -> Path:
        return ensure_demo_captions(self.root, seed=self.seed, n_train=self.n_train, n_test=self.n_test)

    def read(self) -> dict[str, list[VQAQuestion]]:
        folder = self.prepare()
        captions = {c["image"]: tuple(c["captions"]) for c in json.loads((folder / "captions.json").read_text(encoding="utf-8"))}
        out: dict[str, list[VQAQuestion]] = {}
        for i, q in enumerate(json.loads((folder / "qa.json").read_text(encoding="utf-8"))):
            answers = tuple(q["answers"][j % len(q["answers"])] for j in range(10))
            record = VQAQuestion(str(folder / "images" / q["image"]), q["question"], answers, str(i), captions[q["image"]])
            out.setdefault(q["split"], []).append(record)
        return out
