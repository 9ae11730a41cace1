"""Few-shot classification: frozen CLIP + a classification head + accuracy on each class set."""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from aape_lightning.core.aape import AAPECore
from aape_lightning.data.classification.contract import ClassificationData
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.heads.classification import AAPEHead
from aape_lightning.heads.classification.base import CoreFactory, HeadFactory
from aape_lightning.metrics.harmonic_mean import harmonic_mean
from aape_lightning.prompts.bank import pad_prompt_embeddings
from aape_lightning.prompts.generate import read_class_list
from aape_lightning.prompts.keys import nfc
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.optim import OptimSchedule

log = logging.getLogger(__name__)


class ClassificationTask(FrozenBackboneTask):
    """Classification with any head; logs accuracy per class set and H for base-to-new.

    Args:
        backbone: a CLIP name, a local checkpoint file, or "demo".
        head: the classification head, called with the frozen backbone and ``core``.
        core: the task-agnostic AAPE core (aggregator, generator, lambda), called with the width; the
            heads that read h(x) (AAPEHead) build it, the others ignore it.
        class_sets: class names per set; filled from the data at fit time and kept in the
            checkpoint, so test and predict need no training config. A set may be a class-list
            file (one name a line, or a JSON list): ``aape predict --ckpt_path X --model.class_sets
            '{"mine": "classes.txt"}' --model.predict_class_set mine`` predicts among classes the
            model never saw (added to the trained sets).
        template: the class template; filled from the data's reader the same way. A class set
            the checkpoint does not hold (a cross-dataset or DG test) uses its own data's template.
        predict_class_set: the class set ``predict`` scores; default: every class known.
        cache_image_features: take image features from the persistent feature store when the data
            has them (``data.feature_store``); false: batches carry pixels, encoded every step.
        cache_dir: where downloads and prompt embeddings are cached.
        optim: the optimiser and schedule, as for every task (tasks/optim.py).
    """

    def __init__(
        self,
        backbone: str = "demo",
        head: HeadFactory = AAPEHead,
        core: CoreFactory = AAPECore,
        class_sets: dict[str, list[str] | str] | None = None,
        template: str | None = None,
        predict_class_set: str | None = None,
        cache_image_features: bool = True,
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__(backbone, cache_dir, optim)
        self.save_hyperparameters()
        self.head = head(self.backbone, core=core)
        self.train_set = "all"
        self.metrics = nn.ModuleDict()
        self._prompts_loaded: set[str] = set()

    @property
    def trains(self) -> bool:
        return self.head.trains

    # -- wiring classes and prompts ----------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        data = dm if isinstance(dm, ClassificationData) else None  # None: predicting from a folder, no data
        data_sets = dict(data.class_sets) if data is not None else {}
        stored = self.hparams.get("class_sets")
        if stored:
            stored = {name: read_class_list(names) if isinstance(names, str) else [nfc(n) for n in names]
                      for name, names in stored.items()}
        if stored and data_sets:
            for name in [n for n in stored if n in data_sets]:
                if stored[name] != data_sets[name]:
                    extra = sorted(set(data_sets[name]) - set(stored[name]))
                    lost = sorted(set(stored[name]) - set(data_sets[name]))
                    raise CheckpointMismatchError(
                        f"class set {name!r} of the data differs from the model's (checkpoint): "
                        f"only in data {extra[:10]}, only in model {lost[:10]}"
                        + ("" if extra or lost else " (same names, other order)")
                        + ". Use the dataset (and protocol) the model was trained on."
                    )
        class_sets = {**(stored or {}), **data_sets}
        if not class_sets:
            raise CheckpointMismatchError(
                "no class names: give data (data.reader) or a checkpoint trained by aape (--ckpt_path)"
            )
        data_template = data.template if data is not None else None
        template = self.hparams.get("template") or data_template or "a photo of a {}."
        self.hparams["class_sets"], self.hparams["template"] = class_sets, template
        for name, names in class_sets.items():
            # a set the model was not trained on (cross-dataset, DG) reads its own data's template
            own = data_template if name in data_sets and name not in (stored or {}) and data_template else template
            self.head.set_classes(name, names, own)
        self.train_set = data.train_set if data is not None else next(iter(class_sets))
        self.metrics = nn.ModuleDict(
            {f"{name}{suffix}": MulticlassAccuracy(num_classes=len(names), average="micro")
             for name, names in class_sets.items() for suffix in ["", *(f"_{d}" for d in self.head.diagnostics)]}
        )

    def _load_prompts(self, sets: list[str]) -> None:
        """Encode the prompts of ``sets`` on the current device (each unique text once, cached on disk)."""
        dm = self.trainer.datamodule
        for name in sets:
            if self.head.prompt_sets is None or name in self._prompts_loaded:
                continue
            prompts = dm.prompts_for(name)
            # one call for the whole set: the text cache reads and rewrites its file once per call, so a call
            # per class made encoding O(K^2) in classes (benchmarks/scale.py)
            flat = self.backbone.text_features([t for p in prompts for t in p])  # (sum_k M_k, d)
            per_class = list(flat.split([len(p) for p in prompts]))  # K x (M_k, d)
            bank, mask = pad_prompt_embeddings(per_class)  # (K, M, d), (K, M)
            self.head.set_prompts(name, bank, mask)
            self._prompts_loaded.add(name)
            log.info("prompts for %r: %d classes, %d prompts (max %d per class)", name, len(per_class),
                     int(mask.sum()), mask.shape[1])

    def on_fit_start(self) -> None:
        sets = [self.train_set] if self.head.prompt_sets == "train" else list(self.trainer.datamodule.class_sets)
        self._load_prompts(sets)

    def on_validation_start(self) -> None:
        if self.head.prompt_sets == "all":
            self._load_prompts([self.train_set])

    def on_test_start(self) -> None:
        if self.head.prompt_sets == "all":
            self._load_prompts(list(self.trainer.datamodule.test_sets))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trained = (checkpoint.get("hyper_parameters") or {}).get("class_sets") or {}
        current = self.hparams.get("class_sets") or {}
        for name in set(trained) & set(current):
            if [nfc(n) for n in trained[name]] != [nfc(n) for n in current[name]]:
                raise CheckpointMismatchError(
                    f"checkpoint was trained with class set {name!r} = {trained[name][:8]}... but the data has "
                    f"{current[name][:8]}...; use the dataset and protocol it was trained on"
                )
        super().on_load_checkpoint(checkpoint)

    # -- steps ---------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, class_set: str) -> torch.Tensor:
        """Images -> ``(B, K)`` logits over ``class_set``; no prompts involved."""
        return self.head(self.backbone.encode_image(images), class_set).logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if self._count_skipped(batch, "train"):
            return None
        out = self.head(self.image_features(batch), self.train_set, batch["label"])
        task_loss = F.cross_entropy(out.logits, batch["label"])
        return self.training_loss(task_loss, out.losses, batch_size=batch["label"].shape[0])

    def _evaluate(self, batch: dict, class_set: str, diagnose: bool = False) -> None:
        if self._count_skipped(batch, "eval"):
            return
        features = self.image_features(batch)
        self.metrics[class_set].update(self.head(features, class_set).logits, batch["label"])
        if diagnose:
            for name, logits in self.head.diagnostic_logits(features, class_set).items():
                self.metrics[f"{class_set}_{name}"].update(logits, batch["label"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.train_set)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        name = self.trainer.datamodule.test_sets[dataloader_idx]
        if self.head.supports(name):
            self._evaluate(batch, name, diagnose=True)

    def _log_accuracies(self, stage: str, names: list[str]) -> dict[str, float]:
        """Compute synced accuracies (each sample counted once across ranks), in percent."""
        accs = {}
        for name in names:
            accs[name] = float(self.metrics[name].compute()) * 100
            self.metrics[name].reset()
            self.log(f"{stage}/acc_{name}", accs[name], sync_dist=False)
        if {"base", "new"} <= set(accs):
            accs["H"] = harmonic_mean(accs["base"], accs["new"])
            self.log(f"{stage}/H", accs["H"], sync_dist=False)
        return accs

    def on_validation_epoch_end(self) -> None:
        self._log_accuracies("val", [self.train_set])

    def on_test_epoch_end(self) -> None:
        sets = [n for n in self.trainer.datamodule.test_sets if self.head.supports(n)]
        skipped = sorted(set(self.trainer.datamodule.test_sets) - set(sets))
        if skipped:
            log.warning("%s cannot score class sets %s; they are left out", type(self.head).__name__, skipped)
        diagnosed = [f"{name}_{d}" for name in sets for d in self.head.diagnostics]
        self.test_results = self._log_accuracies("test", sets + diagnosed)

    def on_predict_start(self) -> None:
        chosen = self._predict_sets()
        names = sum(len(self.hparams["class_sets"][name]) for name in chosen)
        how = "" if self.hparams.get("predict_class_set") else (
            " (every class known, one softmax; --model.predict_class_set picks one set)")
        log.info("predicting among %d classes of class set%s %s%s", names, "s" * (len(chosen) > 1), ", ".join(chosen),
                 how)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        if not self.has_images(batch):
            return {"path": [], "class": [], "probability": []}
        names, logits = self._predict_logits(self.image_features(batch))
        top, idx = logits.softmax(dim=-1).max(dim=-1)  # (B,), (B,)
        return {"path": batch["path"], "class": [names[i] for i in idx.tolist()], "probability": top.tolist()}

    def _predict_sets(self) -> list[str]:
        """The class sets ``predict`` scores: ``predict_class_set``, or every set the head supports."""
        sets = self.hparams["class_sets"]
        chosen = self.hparams.get("predict_class_set")
        if chosen is not None and chosen not in sets:
            raise CheckpointMismatchError(f"predict_class_set {chosen!r} is not one of the model's sets {sorted(sets)}")
        return [chosen] if chosen else [name for name in sets if self.head.supports(name)]

    def _predict_logits(self, features: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Logits over ``predict_class_set``, or over every known class (one softmax: same scale)."""
        sets = self.hparams["class_sets"]
        chosen_sets = self._predict_sets()
        names = [n for name in chosen_sets for n in sets[name]]
        logits = [self.head(features, name).logits for name in chosen_sets]
        return names, torch.cat(logits, dim=-1)  # (B, K_total)
