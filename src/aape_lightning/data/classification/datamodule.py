"""The classification DataModule: any reader, CoOp's few-shot and base-to-new protocols, prompt banks."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Literal

from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt
from torch.utils.data import DataLoader

from aape_lightning.data.classification.catalog import catalog_name
from aape_lightning.data.classification.contract import ClassificationData
from aape_lightning.data.classification.few_shot_cache import few_shot_dir, load_few_shot, save_few_shot
from aape_lightning.data.classification.protocols import (
    SAMPLER,
    base_new_labels,
    by_label,
    sample_few_shot,
    split_fingerprint,
    subsample_classes,
    warn_short_classes,
)
from aape_lightning.data.classification.readers import DatasetReader
from aape_lightning.data.classification.records import DatasetSplits, LabelledImage
from aape_lightning.data.feature_store import DEFAULT_MAX_GB
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.errors import DataError
from aape_lightning.prompts.formats import AS_WRITTEN, check_prompt_format
from aape_lightning.prompts.resolve import match_prompt_file

log = logging.getLogger(__name__)


def subsample_prompts(prompts: list[str], k: int, seed: str) -> list[str]:
    """At most ``k`` of a class's prompts, in their order, the same ones for the same seed and class."""
    if len(prompts) <= k:
        return list(prompts)
    keep = sorted(random.Random(seed).sample(range(len(prompts)), k))
    return [prompts[i] for i in keep]


class ClassificationDataModule(ImageDataModule, ClassificationData):
    """Few-shot image classification in CoOp's protocols.

    Class sets: ``protocol="base2new"`` trains and validates on "base" and tests on "base" and
    "new" (each relabelled from 0); ``protocol="all"`` uses one set "all" throughout;
    ``protocol="cross"`` only evaluates, on all of this dataset's classes as a set named after
    the dataset (cross-dataset transfer and domain generalisation: a model trained on ImageNet
    tested on another dataset's classes).
    Image size and normalisation come from the model's backbone; the loader arguments
    (``batch_size``, ``eval_batch_size``, ``num_workers``, ``augment``, ``predict_dir``,
    ``on_bad_image``) are :class:`~aape_lightning.data.image_datamodule.ImageDataModule`'s.

    The loader and feature-store arguments (``batch_size`` ... ``on_bad_image``, ``feature_store``,
    ``feature_views``, ``feature_store_gb``) are :class:`~aape_lightning.data.image_datamodule.ImageDataModule`'s.

    Args:
        reader: the dataset reader (layout); may be omitted for ``predict``.
        shots: training images per class (CoOp: 1, 2, 4, 8, 16); 0 keeps every image. The
            images are those Dassl's sampler picks for CoOp with the same seed; a class with
            fewer images keeps all it has, with a warning naming it.
        seed: the few-shot sampling seed (CoOp: 1, 2, 3).
        protocol: "base2new", "all" or "cross" (evaluation only).
        prompts: a CuPL-format prompt file for prompt-using heads; default: the reader's.
        prompt_fallback: classes missing from the prompt file (or with an empty prompt list)
            use the class template instead of failing.
        prompt_mapping: a JSON file ``{"dataset class" or "#class index": "prompt bank key"}``
            for names the matcher (case, underscores, word order, qualifiers) cannot pair; the
            shipped mappings for CuPL's banks apply by themselves when the dataset is catalogued.
        prompt_dedup_threshold: drop prompts whose sentence-transformers cosine similarity to an
            earlier prompt of the class exceeds this (e.g. 0.95); None keeps all.
        prompt_report: write how each class (of every class set) was matched to this JSON file.
        prompt_keep_repeats: keep a class's exact repeated sentences (CuPL's files have many),
            which weights them more in the class mean; default drops them (counted in the report).
        prompt_format: how the file's entries become prompts: "as-written" (CuPL's sentences),
            "classify_by_description" (descriptor files: "<class>, which has <descriptor>" and
            its variants, as that paper's code loads them), or a template with {descriptor} and
            optionally {class}, e.g. "{class}, which has {descriptor}." (docs/prompt-banks.md).
        prompts_per_class: keep at most this many reference prompts per class, drawn with ``seed``
            (the scaling study's prompt budget); None keeps all.
        val_shots: validation images per class; default ``min(shots, 4)`` as CoOp.
        split_cache_dir: where the sampled few-shot split is cached as JSON; default
            ``<cache dir>/split_fewshot/<dataset>-<hash of root>`` (``$AAPE_CACHE_DIR``, else
            ``~/.cache/aape``): nothing is ever written into the data folder.
    """

    def __init__(
        self,
        reader: DatasetReader | None = None,
        shots: NonNegativeInt = 16,
        seed: NonNegativeInt = 1,
        protocol: Literal["base2new", "all", "cross"] = "base2new",
        prompts: str | None = None,
        prompt_fallback: bool = False,
        prompt_mapping: str | None = None,
        prompt_dedup_threshold: ClosedUnitInterval | None = None,
        prompt_report: str | None = None,
        prompt_keep_repeats: bool = False,
        prompt_format: str = AS_WRITTEN,
        prompts_per_class: PositiveInt | None = None,
        val_shots: PositiveInt | None = None,
        batch_size: PositiveInt = 32,
        eval_batch_size: PositiveInt = 100,
        num_workers: NonNegativeInt = 2,
        augment: bool = True,
        split_cache_dir: str | None = None,
        predict_dir: str | None = None,
        on_bad_image: Literal["fail", "skip"] = "fail",
        feature_store: bool = True,
        feature_views: NonNegativeInt = 0,
        feature_store_gb: PositiveFloat = DEFAULT_MAX_GB,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            augment=augment,
            predict_dir=predict_dir,
            on_bad_image=on_bad_image,
            feature_store=feature_store,
            feature_views=feature_views,
            feature_store_gb=feature_store_gb,
        )
        self.reader = reader
        self.shots, self.seed, self.protocol = shots, seed, protocol
        self.prompts, self.prompt_fallback = prompts, prompt_fallback
        self.prompt_mapping, self.prompt_dedup_threshold = prompt_mapping, prompt_dedup_threshold
        self.prompt_report, self.prompt_keep_repeats = prompt_report, prompt_keep_repeats
        self.prompt_format = check_prompt_format(prompt_format)
        self._prompt_match = None  # every class's prompts, matched once (see prompts_for)
        if prompts_per_class is not None and prompts_per_class < 1:
            raise DataError(f"data.prompts_per_class={prompts_per_class}: give a count >= 1, or null to keep every prompt")
        self.prompts_per_class = prompts_per_class
        self.val_shots = val_shots
        self.split_cache_dir = split_cache_dir
        self.splits: DatasetSplits | None = None
        self.class_sets: dict[str, list[str]] = {}
        self.class_labels: dict[str, list[int]] = {}  # class set -> its classes' indexes in the dataset
        self.datasets: dict[str, dict[str, list[LabelledImage]]] = {}  # stage -> class set -> images
        self.few_shot_record: Path | None = None

    # -- what the task reads (ClassificationData) ---------------------------------------
    @property
    def train_set(self) -> str:
        return {"base2new": "base", "all": "all"}.get(self.protocol, self._cross_name)

    @property
    def test_sets(self) -> list[str]:
        return {"base2new": ["base", "new"], "all": ["all"]}.get(self.protocol, [self._cross_name])

    @property
    def _cross_name(self) -> str:
        return f"cross:{self.reader.name}" if self.reader is not None else "cross"

    @property
    def template(self) -> str | None:
        return self.splits.template if self.splits else None

    def prompts_for(self, class_set: str) -> list[list[str]]:
        """A class set's prompts, aligned by label (errors name the file and the classes)."""
        path = self.prompts or (self.splits.prompts if self.splits else None)
        if path is None:
            raise DataError(
                "this head needs a prompt bank but none is set: pass data.prompts=<CuPL JSON> "
                "(or a reader whose dataset ships one)"
            )
        if self._prompt_match is None:  # all classes at once: no key shared across halves, unused keys counted once
            fallback = self.splits.template if self.prompt_fallback else None
            self._prompt_match = match_prompt_file(
                path, self.splits.classnames, self.prompt_mapping, fallback, self.prompt_dedup_threshold,
                self.prompt_report, dataset=catalog_name(self.reader.name) if self.reader is not None else None,
                keep_repeats=self.prompt_keep_repeats, prompt_format=self.prompt_format,
            )
        prompts = self._prompt_match.select(self.class_labels[class_set])
        if self.prompts_per_class is None:
            return prompts
        names = self.class_sets[class_set]
        return [subsample_prompts(p, self.prompts_per_class, f"{self.seed}/{n}") for p, n in zip(prompts, names)]

    # -- Lightning hooks -------------------------------------------------------------
    def prepare_data(self) -> None:
        """Called by Lightning on one process per node: readers that generate data do it here."""
        if self.reader is not None:
            self.reader.prepare()

    def setup(self, stage: str) -> None:
        if stage == "predict" or self.splits is not None:
            return
        if self.reader is None:
            raise DataError(f"'{stage}' needs data: set data.reader (e.g. CoOpSplitReader with its root)")
        if self.protocol == "cross" and stage == "fit":
            raise DataError(
                "protocol 'cross' only evaluates (aape test) on another dataset's classes; train with protocol 'all'"
            )
        splits = self.reader.read()
        self._require_two_classes(splits.classnames)  # before anything is sampled or written
        self.splits = splits
        train, val = self._few_shot(self.splits)
        test = self.splits.test
        names = self.splits.classnames
        if self.protocol == "base2new":
            base, new = base_new_labels(len(names))
            self.class_sets = {"base": [names[i] for i in base], "new": [names[i] for i in new]}
            self.class_labels = {"base": list(base), "new": list(new)}
            self.datasets = {
                "train": {"base": subsample_classes(train, base)},
                "val": {"base": subsample_classes(val, base)},
                "test": {"base": subsample_classes(test, base), "new": subsample_classes(test, new)},
            }
        else:
            name = self.train_set
            self.class_sets = {name: list(names)}
            self.class_labels = {name: list(range(len(names)))}
            self.datasets = {"train": {name: train}, "val": {name: val}, "test": {name: list(test)}}
        needed = ["test"] if self.protocol == "cross" else ["train", "val", "test"]
        for stage_name in needed:
            for set_name, items in self.datasets[stage_name].items():
                if not items:
                    raise DataError(f"{self.reader.root}: the {stage_name} split of class set {set_name!r} is empty")
        log.info(
            "%s: %d classes, train %d / val %d / test %d after sampling",
            self.reader.name, len(names), len(train), len(val), len(test),
        )

    def _require_two_classes(self, names: list[str]) -> None:
        """Accuracy over one class is meaningless (and torchmetrics refuses it): say so before training."""
        base, new = base_new_labels(len(names))
        if self.protocol == "base2new" and min(len(base), len(new)) < 2:
            raise DataError(
                f"{self.reader.root}: base-to-new splits the dataset's {len(names)} classes into base "
                f"{[names[i] for i in base]} and new {[names[i] for i in new]}; each side needs at least 2 classes, "
                f"so base-to-new needs a dataset of at least 4 classes: add classes or set data.protocol=all"
            )
        if len(names) < 2:
            raise DataError(
                f"{self.reader.root}: only {len(names)} class ({names}); classification needs at least 2 classes: "
                f"add classes (class folders or rows of the split file)"
            )

    def _few_shot(self, splits: DatasetSplits) -> tuple[list[LabelledImage], list[LabelledImage]]:
        """Sample (or reuse) the few-shot train/val split; cached as JSON keyed by content."""
        val_shots = self.val_shots if self.val_shots is not None else min(self.shots, 4)
        meta = {
            "dataset": self.reader.name,
            "train_fingerprint": split_fingerprint(splits.train),
            "val_fingerprint": split_fingerprint(splits.val),
            "shots": self.shots,
            "val_shots": val_shots,
            "seed": self.seed,
            "sampler": SAMPLER,  # samples of an older sampler are drawn again, not reused
        }
        path = self._cache_dir() / f"shot_{self.shots}-seed_{self.seed}.json"
        cached = load_few_shot(path, meta)
        if cached is not None:
            log.info("reusing few-shot split %s", path)
            if self.shots > 0:  # the same warning as when it was drawn
                warn_short_classes(by_label(splits.train), self.shots, f"{self.reader.name} train")
            self.few_shot_record = path
            return cached
        train, val = sample_few_shot(splits.train, splits.val, self.shots, self.seed, val_shots, self.reader.name)
        if self.trainer is None or self.trainer.is_global_zero:
            save_few_shot(path, train, val, meta)
            log.info("sampled %d-shot split (seed %d), saved to %s", self.shots, self.seed, path)
        self.few_shot_record = path
        return train, val

    def _cache_dir(self) -> Path:
        if self.split_cache_dir:
            return Path(self.split_cache_dir)
        return few_shot_dir(self.reader.root, self.reader.name)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"][self.train_set], train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"][self.train_set], train=False)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per class set, in ``test_sets`` order (the task maps dataloader_idx to it)."""
        return [self._loader(self.datasets["test"][name], train=False) for name in self.test_sets]
