"""Captioning (LiMBeR + AAPE): LM loss on the captions; CIDEr-D, BLEU-4, CLIP-S, RefCLIP-S on the test set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from jsonargparse.typing import NonNegativeFloat, PositiveInt
from torch import Tensor
from torchmetrics import MeanMetric

from aape_lightning.core.aape import AAPECore
from aape_lightning.metrics.caption_metrics import clip_scores, coco_caption_scores
from aape_lightning.prompts.bank import pad_prompt_embeddings
from aape_lightning.tasks.optim import OptimSchedule
from aape_lightning.tasks.prefix_lm_task import PrefixLMTask, gather_objects


class CaptioningTask(PrefixLMTask):
    """Batches: ``{"image", "captions": [B lists], "image_id"}``; a DataModule with ``test_sets`` (NoCaps'
    domains) has one test loader per set, each scored on its own as well as all together.

    Args (besides PrefixLMTask's):
        prompt: text between the prefix and the caption (LiMBeR: none).
        decoding: "greedy" or "beam".
        num_beams: beams for "beam".
        max_length: LM tokens a caption may have.
        clip_score_weight: w of CLIP-S (CLIPScore: 2.5).
        clip_score_prefix: put before a candidate when CLIP scores it (CLIPScore: "A photo depicts").
    """

    def __init__(
        self,
        backbone: str = "demo",
        lm: str = "demo",
        num_image_tokens: PositiveInt = 4,
        use_aape: bool = True,
        num_aape_tokens: PositiveInt = 1,
        core: Callable[[int], AAPECore] = AAPECore,
        init_from: str | None = None,
        prompt: str = "",
        decoding: Literal["greedy", "beam"] = "beam",
        num_beams: PositiveInt = 3,
        max_length: PositiveInt = 20,
        clip_score_weight: NonNegativeFloat = 2.5,
        clip_score_prefix: str = "A photo depicts",
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__(backbone, lm, num_image_tokens, use_aape, num_aape_tokens, core, init_from, cache_dir, optim)
        self.save_hyperparameters(ignore=["init_from"])
        self.prompt_ids = self.lm.encode([prompt])[0] if prompt else []
        self.clip_s, self.refclip_s = MeanMetric(), MeanMetric()
        self.val_loss = MeanMetric()  # weighted by images and synced: every rank's images, not rank 0's alone
        self._outputs: list[tuple] = []

    def _samples(self, prefix: Tensor, captions: list[list[str]] | None = None) -> list:
        """One segment list per (image, caption): prefix, prompt, then the caption as target (+ EOS)."""
        if captions is None:
            return [[(p, False), (self.prompt_ids, False)] for p in prefix]
        texts = [(" " + c if self.prompt_ids else c) for caps in captions for c in caps]
        targets = iter(self.lm.encode(texts))
        return [[(p, False), (self.prompt_ids, False), (next(targets) + [self.lm.eos_id], True)]
                for p, caps in zip(prefix, captions) for _ in caps]  # fmt: skip

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        if self._count_skipped(batch, "train"):
            return None
        prefix, losses = self.image_prefix(self.image_features(batch), batch["captions"])  # (B, P, E)
        task_loss = self.prefix_lm.loss(self._samples(prefix, batch["captions"]))
        return self.training_loss(task_loss, losses, batch_size=prefix.shape[0])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if self._count_skipped(batch, "val"):
            return
        prefix, _ = self.image_prefix(self.image_features(batch))
        self.val_loss.update(self.prefix_lm.loss(self._samples(prefix, batch["captions"])), weight=prefix.shape[0])
        self.log("val/loss", self.val_loss, batch_size=prefix.shape[0])

    def caption(self, features: Tensor) -> list[str]:
        """Image features ``(B, d)`` -> one caption each (no text needed)."""
        prefix, _ = self.image_prefix(features)
        beams = self.hparams.num_beams if self.hparams.decoding == "beam" else 1
        ids = self.prefix_lm.generate(self._samples(prefix), self.hparams.max_length, beams)
        return [self.lm.decode(x) for x in ids]

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._count_skipped(batch, "test"):
            return
        image = self.image_features(batch)  # (B, d)
        hyps = self.caption(image)
        prefix = f"{self.hparams.clip_score_prefix} " if self.hparams.clip_score_prefix else ""
        candidate = self.backbone.encode_text([prefix + h for h in hyps])  # (B, d)
        refs, mask = pad_prompt_embeddings([self.backbone.text_features(list(c)) for c in batch["captions"]])  # (B, M, d)
        clip_s, refclip_s = clip_scores(image, candidate, refs, mask, self.hparams.clip_score_weight)  # (B,), (B,)
        self.clip_s.update(100 * clip_s), self.refclip_s.update(100 * refclip_s)
        sets = getattr(self.trainer.datamodule, "test_sets", None)
        domains = [sets[dataloader_idx] if sets else None] * len(hyps)
        ids = [str(i) for i in (batch["image_id"].tolist() if isinstance(batch["image_id"], Tensor) else batch["image_id"])]
        self._outputs += list(zip(ids, hyps, [list(c) for c in batch["captions"]], domains))

    def on_test_epoch_end(self) -> None:
        outputs = gather_objects(self, self._outputs)
        self._outputs = []
        results = {}
        groups = {"": outputs, **{f"{d}/": [o for o in outputs if o[3] == d] for d in sorted({o[3] for o in outputs} - {None})}}
        for name, rows in groups.items():
            scores = coco_caption_scores({r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows})
            results.update({name + k: v for k, v in scores.items()})
        results["CLIP-S"], results["RefCLIP-S"] = float(self.clip_s.compute()), float(self.refclip_s.compute())
        self.clip_s.reset(), self.refclip_s.reset()
        for key, value in results.items():
            self.log(f"test/{key}", value, sync_dist=False)
        self.test_results = results

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        if not self.has_images(batch):
            return {"path": [], "caption": []}
        return {"path": batch["path"], "caption": self.caption(self.image_features(batch))}
