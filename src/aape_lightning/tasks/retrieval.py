"""Image-text retrieval: the AAPE h(x) as the image query against frozen caption embeddings.

Training (the paper's): the aggregator condenses each image's captions into p^a, ``L_task`` is
CLIP's contrastive loss between h(x) and one of the image's captions (drawn per step), plus the
core's lambda * L_distill and aggregator reward. ``query: image`` is plain CLIP retrieval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor, nn

from aape_lightning.core import AAPECore, contrastive_loss
from aape_lightning.errors import CheckpointMismatchError, DataError
from aape_lightning.metrics.retrieval_recall import RetrievalRecall
from aape_lightning.prompts.bank import pad_prompt_embeddings
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.optim import OptimSchedule

log = logging.getLogger(__name__)


class RetrievalTask(FrozenBackboneTask):
    """Retrieval with AAPE as the image query; test also reports plain CLIP (``clip_*``) for comparison.

    Args:
        backbone: a CLIP name, a local checkpoint file, or "demo".
        core: the task-agnostic AAPE core (aggregator, generator, lambda), called with the width.
        query: "aape" scores ``cos(h(x), caption)``; "image" scores ``cos(x, caption)`` (plain CLIP,
            nothing to train: evaluate it with ``aape test``).
        init_from: an ``aape fit`` retrieval checkpoint whose core weights start training
            (finetuning an h trained on other captions); read at fit time only.
        recall_ks: the K of R@K.
        cache_image_features: take image features from the feature store when the data has them
            (``data.feature_store``); false: batches carry pixels, encoded every step.
        cache_dir: where downloads and caption embeddings are cached.
        optim: the optimiser and schedule, as for every task (tasks/optim.py).
    """

    def __init__(
        self,
        backbone: str = "demo",
        core: Callable[[int], AAPECore] = AAPECore,
        query: Literal["aape", "image"] = "aape",
        init_from: str | None = None,
        recall_ks: list[PositiveInt] = [1, 5, 10],  # noqa: B006 (jsonargparse needs the literal default)
        cache_image_features: bool = True,
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__(backbone, cache_dir, optim)
        if query not in ("aape", "image"):
            raise ValueError(f"RetrievalTask: query {query!r} is not one of 'aape', 'image'")
        self.save_hyperparameters()
        self.core = core(self.backbone.embed_dim)
        self.metrics = nn.ModuleDict({"query": RetrievalRecall(recall_ks), "clip": RetrievalRecall(recall_ks)})
        self._gallery: tuple[list[str], Tensor, int] | None = None

    def trainable_parameters(self) -> list[nn.Parameter]:
        return super().trainable_parameters() if self.hparams.query == "aape" else []

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.init_from:
            self._init_core(Path(self.hparams.init_from))

    def _init_core(self, path: Path) -> None:
        if not path.is_file():
            raise CheckpointMismatchError(f"init_from {path} does not exist; pass a .ckpt written by `aape fit`")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        self.check_models_of(checkpoint)  # refuses another backbone
        state = {k[len("core."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("core.")}
        if not state:
            raise CheckpointMismatchError(f"init_from {path} holds no AAPE core; pass a RetrievalTask checkpoint")
        self.core.load_state_dict(state)
        log.info("core initialised from %s", path)

    def _encode_split(self, split: str | None) -> None:
        """Encode a split's captions in one go (then served from memory), not batch by batch: the
        on-disk text cache is rewritten once per call, so per-batch misses would rewrite it per step."""
        dm = self.trainer.datamodule
        texts = [c for r in dm.images(split) for c in r.captions] if hasattr(dm, "images") else []
        if texts:
            self.backbone.text_features(texts)

    def on_fit_start(self) -> None:
        self._encode_split(self.trainer.datamodule.train_split)

    def on_validation_start(self) -> None:
        self._encode_split(self.trainer.datamodule.val_split)

    def on_test_start(self) -> None:
        self._encode_split(self.trainer.datamodule.test_split)

    # -- embeddings --------------------------------------------------------------------
    def query(self, features: Tensor) -> Tensor:
        """The image side of the score: h(x) (AAPE) or x itself (plain CLIP), ``(B, d)`` unit vectors."""
        return self.core(features, self.backbone.logit_scale).aape if self.hparams.query == "aape" else features

    def caption_features(self, captions: list[list[str]]) -> tuple[Tensor, Tensor]:
        """Each image's captions encoded (cached per text): ``(B, M, d)`` and the mask ``(B, M)``."""
        flat = self.backbone.text_features([c for texts in captions for c in texts])  # (sum M_i, d)
        return pad_prompt_embeddings(flat.split([len(texts) for texts in captions]))

    # -- steps ---------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        if self._count_skipped(batch, "train"):
            return None
        features = self.image_features(batch)  # (B, d)
        captions, mask = self.caption_features(batch["captions"])  # (B, M, d), (B, M)
        out = self.core(features, self.backbone.logit_scale, captions, mask)
        pick = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0).argmax(1)  # (B,) one caption each
        positive = captions[torch.arange(len(pick), device=pick.device), pick]  # (B, d)
        task_loss = contrastive_loss(out.aape, positive, self.backbone.logit_scale)
        return self.training_loss(task_loss, out.losses, batch_size=len(pick))

    def _evaluate(self, batch: dict, baseline: bool) -> None:
        if self._count_skipped(batch, "eval"):
            return
        features = self.image_features(batch)  # (B, d)
        counts = torch.tensor([len(c) for c in batch["captions"]], device=features.device)  # (B,)
        texts = self.backbone.text_features([c for texts in batch["captions"] for c in texts])  # (T, d)
        owner = batch["index"].to(features.device).repeat_interleave(counts)  # (T,) dataset index of each caption's image
        slot = torch.cat([torch.arange(int(n), device=features.device) for n in counts])  # (T,)
        self.metrics["query"].update(self.query(features), batch["index"], texts, owner, slot)
        if baseline and self.hparams.query == "aape":
            self.metrics["clip"].update(features, batch["index"], texts, owner, slot)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, baseline=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, baseline=True)

    def _log_recalls(self, stage: str) -> dict[str, float]:
        """Synced R@K in percent (every image counted once across ranks); ``clip_*`` when measured."""
        results = {}
        for name, metric in self.metrics.items():
            prefix = "" if name == "query" else f"{name}_"
            if metric.update_count:
                results.update({prefix + k: v for k, v in metric.compute().items()})
            metric.reset()
        for name, value in results.items():
            self.log(f"{stage}/{name}", value, sync_dist=False)
        return results

    def on_validation_epoch_end(self) -> None:
        self._log_recalls("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = self._log_recalls("test")

    # -- predict: the top captions of a gallery for each image ------------------------------
    def on_predict_start(self) -> None:
        dm = self.trainer.datamodule
        if not hasattr(dm, "gallery"):
            raise DataError("predict ranks captions: use --data CaptionDataModule with data.gallery or data.reader")
        texts = dm.gallery()
        self._gallery = (texts, self.backbone.text_features(texts), min(dm.top_k, len(texts)))  # G, (G, d), k
        log.info("ranking %d gallery captions per image", len(texts))

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        texts, gallery, k = self._gallery
        columns = ["path"] + [f"{c}_{i}" for i in range(1, k + 1) for c in ("caption", "score")]
        if not self.has_images(batch):
            return {c: [] for c in columns}
        scores = self.query(self.image_features(batch)) @ gallery.t()  # (B, G)
        top, idx = scores.topk(k, dim=-1)  # (B, k)
        out = {"path": list(batch["path"])}
        for i in range(k):
            out[f"caption_{i + 1}"] = [texts[row[i]] for row in idx.tolist()]
            out[f"score_{i + 1}"] = [row[i] for row in top.tolist()]
        return out
