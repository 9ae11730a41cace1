"""What captioning and VQA share: frozen CLIP, the AAPE core and LiMBeR's prefix LM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from jsonargparse.typing import PositiveInt
from torch import Tensor

from aape_lightning.core.aape import AAPECore
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.language import FrozenLM, PrefixLM
from aape_lightning.prompts.bank import pad_prompt_embeddings
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.checkpoint import read_checkpoint
from aape_lightning.tasks.optim import OptimSchedule

log = logging.getLogger(__name__)
TRAINED = ("prefix_lm.image_map.", "prefix_lm.aape_map.", "core.")  # what LiMBeR + AAPE train: the maps and the core


class PrefixLMTask(FrozenBackboneTask):
    """Frozen CLIP -> [AAPE h(x)] + LiMBeR's image map -> frozen LM.

    The AAPE is trained as in retrieval: the aggregator reads the image's captions (the
    reference prompts) and ``h`` is distilled towards it; at inference ``h(x)`` needs no text.

    Args:
        backbone: a CLIP name, a local checkpoint file, or "demo".
        lm: a ``transformers`` causal LM (hub id or folder), a build-lm file, or "demo"
            (LiMBeR used GPT-J 6B, ``EleutherAI/gpt-j-6b``).
        num_image_tokens: k, LM embeddings the image is mapped to.
        use_aape: prefix the mapped AAPE; False is LiMBeR alone (the baseline).
        num_aape_tokens: LM embeddings the AAPE is mapped to.
        core: the task-free AAPE core, called with CLIP's width.
        init_from: a captioning (or VQA) checkpoint whose trained weights (image map, AAPE map,
            AAPE core) replace the fresh ones before fit, test, validate or predict: e.g. zero-shot
            VQA from a captioning run with ``aape test --config configs/demo/vqa.yaml
            --model.init_from X``. Not saved in checkpoints (their own weights are complete).
        cache_dir: where downloads and caption embeddings are cached.
        optim: the optimiser and schedule of the trainable parts (the maps and the core), as for every
            task (tasks/optim.py).
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
        cache_dir: str | None = None,
        optim: OptimSchedule = OptimSchedule(),
    ) -> None:
        super().__init__(backbone, cache_dir, optim)
        dim = self.backbone.embed_dim
        self.core = core(dim) if use_aape else None
        self.prefix_lm = PrefixLM(FrozenLM.load(lm, cache_dir), dim, num_image_tokens, use_aape, num_aape_tokens)
        self.init_from = init_from

    def setup(self, stage: str) -> None:
        """Lightning restores a ``--ckpt_path`` after ``setup``, so its weights still win over ``init_from``'s."""
        if self.init_from:
            self.load_trained_weights(self.init_from)

    def load_trained_weights(self, path: str | Path) -> None:
        """Take the maps and the core from another prefix-LM checkpoint of the same backbone and LM, or refuse."""
        checkpoint = read_checkpoint(path)
        saved = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(TRAINED)}
        kind = str((checkpoint.get("hyper_parameters") or {}).get("_class_path", "another task's")).rsplit(".", 1)[-1]
        if "prefix_lm.image_map.weight" not in saved:
            raise CheckpointMismatchError(
                f"init_from {path} is a {kind} checkpoint without a prefix-LM image map; "
                f"pass a CaptioningTask or VQATask checkpoint"
            )
        try:
            self.check_models_of(checkpoint)  # refuses another CLIP or LM
        except CheckpointMismatchError as err:
            raise CheckpointMismatchError(f"init_from {path}: {err}") from None
        own = {k: v for k, v in self.state_dict().items() if k.startswith(TRAINED)}
        differ = sorted(k for k in own.keys() | saved.keys()
                        if k not in own or k not in saved or own[k].shape != saved[k].shape)  # fmt: skip
        if differ:
            raise CheckpointMismatchError(
                f"init_from {path} ({kind}) does not fit this model at {', '.join(differ[:3])}; set model.use_aape, "
                f"model.num_image_tokens, model.num_aape_tokens and model.core as the checkpoint was trained"
            )
        self.load_state_dict(saved, strict=False)
        log.info("image map, AAPE map and core initialised from %s", path)

    @property
    def lm(self) -> FrozenLM:
        return self.prefix_lm.lm

    def image_prefix(self, features: Tensor, captions: list[list[str]] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Image features ``(B, d)`` (``image_features``) -> prefix ``(B, P, E)`` and the core's losses
        (with ``captions`` only)."""
        if self.core is None:
            return self.prefix_lm.prefix(features), {}
        prompts = mask = None
        if captions is not None:
            prompts, mask = pad_prompt_embeddings([self.backbone.text_features(list(c)) for c in captions])  # (B, M, d)
        out = self.core(features, self.backbone.logit_scale, prompts, mask)
        return self.prefix_lm.prefix(features, out.aape), out.losses

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["aape_lm"] = {"name": self.lm.spec.name, "sha256": self.lm.spec.sha256}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint whose maps were trained for another LM file."""
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("aape_lm")
        if saved and saved["sha256"] != self.lm.spec.sha256:
            raise CheckpointMismatchError(
                f"checkpoint was trained with LM {saved['name']!r} (sha256 {saved['sha256'][:12]}) but the model now "
                f"loads {self.lm.spec.name!r} (sha256 {self.lm.spec.sha256[:12]}); set model.lm to the checkpoint's LM"
            )


def gather_objects(task: FrozenBackboneTask, items: list) -> list:
    """Every rank's ``items`` concatenated (corpus metrics need all hypotheses); a no-op on one process."""
    if task.trainer.world_size <= 1 or not torch.distributed.is_initialized():
        return list(items)
    parts: list = [None] * task.trainer.world_size
    torch.distributed.all_gather_object(parts, items)
    return [x for part in parts for x in part]
