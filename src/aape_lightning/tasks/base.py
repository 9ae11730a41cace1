"""What every task shares, written once.

The frozen backbone and its identity in checkpoints, the sum and logging of the extra losses a
head or the AAPE core returns, and the optimiser and schedule (one ``OptimSchedule`` block, tasks/optim.py).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from aape_lightning.backbones.load import load_backbone
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.tasks.optim import OptimSchedule


class FrozenBackboneTask(L.LightningModule):
    """A LightningModule around a frozen CLIP; subclasses add a head, steps and metrics.

    Args:
        backbone: a CLIP name (e.g. "ViT-B/16"), a local checkpoint file, "demo", an OpenCLIP model
            ("open_clip:ViT-B-16/laion2b_s34b_b88k", "open_clip:<folder>") or a Hugging Face one
            ("hf:openai/clip-vit-base-patch16", "hf:google/siglip-base-patch16-224", "hf:<folder>");
            see docs/backbones.md.
        cache_dir: where downloads and prompt embeddings are cached (default: $AAPE_CACHE_DIR,
            else $XDG_CACHE_HOME/aape).
        optim: the optimiser and learning-rate schedule of the trainable parameters (tasks/optim.py).
    """

    def __init__(
        self,
        backbone: str = "demo",
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__()
        self.backbone = load_backbone(backbone, cache_dir)
        self.optim = optim
        self.data_config: dict | None = None  # the CLI's data settings, saved so `aape test --ckpt_path` needs none

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["aape_backbone"] = {"name": self.backbone.spec.name, "sha256": self.backbone.spec.sha256}
        if self.data_config is not None:
            checkpoint["aape_data"] = self.data_config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint trained on another backbone (its weights are not in the checkpoint)."""
        fit_loop = (checkpoint.get("loops") or {}).get("fit_loop") or {}
        self._loader_states = (fit_loop.get("state_dict") or {}).get("combined_loader")
        saved = checkpoint.get("aape_backbone")
        if saved and saved["sha256"] != self.backbone.spec.sha256:
            raise CheckpointMismatchError(
                f"checkpoint was trained on backbone {saved['name']!r} (sha256 {saved['sha256'][:12]}) but the model "
                f"now uses {self.backbone.spec.name!r} (sha256 {self.backbone.spec.sha256[:12]}); "
                f"set model.backbone to the checkpoint's backbone"
            )

    def check_models_of(self, checkpoint: dict) -> None:
        """Refuse another run's checkpoint (``init_from``) made with other frozen models, taking nothing else
        from it: its loader state would replace this run's seeded data order (and skip batches mid-epoch)."""
        self.on_load_checkpoint({k: checkpoint[k] for k in ("aape_backbone", "aape_lm") if k in checkpoint})

    def on_train_start(self) -> None:
        """Resuming mid-epoch: give the training loaders their saved place and random state.

        Lightning hands them over only when it builds the loaders after restoring, but
        ``configure_optimizers`` (``estimated_stepping_batches``) builds them before.
        """
        states, self._loader_states = getattr(self, "_loader_states", None), None
        loaders = self.trainer.train_dataloader
        loaders = list(loaders.values()) if isinstance(loaders, dict) else loaders
        loaders = [dl for dl in (loaders if isinstance(loaders, (list, tuple)) else [loaders]) if hasattr(dl, "load_state_dict")]
        for loader, state in zip(loaders, states or []):
            loader.load_state_dict(state)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Weights that do not fit (a ``--model`` option changed the head's shape) are refused in one line."""
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as err:
            detail = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
            raise CheckpointMismatchError(
                f"the checkpoint's weights do not fit this model ({detail[:300]}); a model option changed its "
                f"shape: drop that --model option to use the checkpoint's settings"
            ) from None

    def training_loss(self, task_loss: Tensor, losses: dict[str, Tensor], batch_size: int) -> Tensor:
        """``L_task`` plus the already-weighted extra losses (e.g. lambda * L_distill), each logged."""
        loss = task_loss + sum(losses.values())
        # batch_size: Lightning weights only epoch means by it, and these are logged per step (training_step)
        self.log("train/loss", loss, prog_bar=True,
                 batch_size=batch_size,  # pragma: no mutate: per-step logs ignore batch_size
        )
        self.log("train/task_loss", task_loss,
                 batch_size=batch_size,  # pragma: no mutate: per-step logs ignore batch_size
        )
        for name, value in losses.items():
            self.log(f"train/{name}_loss", value,
                     batch_size=batch_size,  # pragma: no mutate: per-step logs ignore batch_size
            )
        return loss

    @property
    def needs_pixels(self) -> bool:
        """Whether batches must carry pixels, not stored features (a method that changes the image tower
        would); the task's ``cache_image_features: false`` asks for pixels."""
        return not self.hparams.get("cache_image_features", True)

    def image_features(self, batch: dict) -> Tensor:
        """``(B, d)`` frozen features: the batch's own when the data read them from the feature store
        (see ImageDataModule's ``feature_store``), else its pixels encoded now. Every task and head
        takes image features from here and so never knows which."""
        if "feature" in batch:
            features = batch["feature"]  # (B, d)
            return features.to(self.device)  # pragma: no mutate: the device: the same on the CPU tests run on
        return self.backbone.encode_image(batch["image"])

    @staticmethod
    def has_images(batch: dict) -> bool:
        """Whether the batch kept any image (as pixels or as stored features)."""
        return "image" in batch or "feature" in batch

    def _count_skipped(self, batch: dict, stage: str) -> bool:
        """Log unreadable images that the data skipped; True when nothing is left to run on."""
        skipped = int(batch.get("skipped", 0))
        if skipped:
            self.log(f"{stage}/skipped_images", float(skipped), reduce_fx=torch.sum)  # a sum: no batch size to weight by
        return not self.has_images(batch)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def trains(self) -> bool:
        """Whether ``fit`` has anything to optimise (before ``setup``, when lazy parts are not built yet)."""
        return bool(self.trainable_parameters())

    def configure_optimizers(self):
        params = self.trainable_parameters()
        if not params:
            raise ValueError(
                f"{type(self).__name__}: nothing to train with this head; evaluate it with `aape test` instead of `fit`"
            )
        epochs = max(self.trainer.max_epochs, 1)  # fit sets -1 when only max_steps bounds the run
        return self.optim.build(params, int(self.trainer.estimated_stepping_batches), epochs)
