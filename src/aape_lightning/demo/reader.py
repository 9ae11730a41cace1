"""Reads a demo dataset like any CoOp dataset, generating it first when absent or stale."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeFloat, NonNegativeInt

from aape_lightning.data.classification.readers import CoOpSplitReader
from aape_lightning.data.classification.records import DatasetSplits
from aape_lightning.demo.datasets import DEMO_DATASETS, PROMPT_NOISE, ensure_demo_dataset
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
