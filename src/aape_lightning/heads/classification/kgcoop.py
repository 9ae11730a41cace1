"""KgCoOp (Yao et al., CVPR 2023): CoOp kept close to the hand-written prompt's text features."""

from __future__ import annotations

import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat
from torch import Tensor

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.data.classification.catalog import CATALOG
from aape_lightning.errors import UserError
from aape_lightning.heads.classification.base import HeadOutput, zero_shot_logits
from aape_lightning.heads.classification.coop import CoOpHead
from aape_lightning.heads.classification.learned_context import ContextOptions

KGCOOP_INIT = "a photo of a"

# KgCoOp's hand-written prompt per dataset (its trainers/kgcoop.py). It differs from CoOp's
# zero-shot template (the catalog's) only for DescribableTextures.
KGCOOP_TEMPLATES: dict[str, str] = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "a photo of a {}, a type of texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}

# The head sees the data's template, not the dataset: CoOp's template of a catalogued dataset
# -> KgCoOp's for it (one answer each: datasets sharing CoOp's template share KgCoOp's).
_FROM_COOP = {CATALOG[name].template: template for name, template in KGCOOP_TEMPLATES.items()}
assert all(_FROM_COOP[CATALOG[n].template] == t for n, t in KGCOOP_TEMPLATES.items()), "ambiguous KgCoOp template"


def kgcoop_template(data_template: str) -> str:
    """KgCoOp's template for the dataset whose (CoOp) template is ``data_template``; others unchanged."""
    return _FROM_COOP.get(data_template, data_template)


class KgCoOpHead(CoOpHead):
    """CoOp plus ``w * mean_k (1 - cos(learned c_k, template c_k))`` while training.

    As KgCoOp's code: the context starts from "a photo of a" (or random, ``ctx_init: null``),
    the class token is at the end, and the hand-written prompt is KgCoOp's per-dataset
    template, not CoOp's zero-shot one (DescribableTextures: "a photo of a {}, a type of
    texture." rather than "{} texture."). Other init words or positions are refused, not
    silently replaced (CoOpHead takes them).

    Args:
        backbone: the frozen CLIP (given by the task).
        context: the learned context (KgCoOp: initialised from "a photo of a", class at the end).
        weight: w, the knowledge-guidance weight (KgCoOp: 8.0).
        template: the hand-written prompt, one ``{}``; None: KgCoOp's for the data's dataset
            (the data's template when the dataset is not one of KgCoOp's).
    """

    def __init__(
        self,
        backbone: FrozenCLIP,
        context: ContextOptions = ContextOptions(n_ctx=4, ctx_init=KGCOOP_INIT),
        weight: NonNegativeFloat = 8.0,
        template: str | None = None,
        **kwargs,
    ) -> None:
        words = context.ctx_init.replace("_", " ").strip() if context.ctx_init else None
        if words not in (None, KGCOOP_INIT) or context.class_token_position != "end":
            raise UserError(
                f"KgCoOpHead: KgCoOp starts its context from {KGCOOP_INIT!r} (or random: ctx_init null) with "
                f"the class token at the end; got ctx_init={context.ctx_init!r}, "
                f"class_token_position={context.class_token_position!r}. Use CoOpHead for other contexts"
            )
        if template is not None and "{}" not in template:
            raise UserError(f"KgCoOpHead: template {template!r} has no '{{}}' where the class name goes")
        super().__init__(backbone, context, **kwargs)
        self.weight, self.knowledge_template = weight, template

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        super().set_classes(name, classnames, self.knowledge_template or kgcoop_template(template))

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        weights = self.context(class_set)  # (K, d)
        out = HeadOutput(zero_shot_logits(image, weights, self.backbone.logit_scale))
        if self.training:
            template = self.class_features(class_set)  # (K, d), the hand-written prompt
            cos = F.cosine_similarity(weights, template, dim=-1)  # (K,)  # pragma: no mutate: on (K, d) dim -1 is dim 1, the default
            out.losses["knowledge"] = self.weight * (1 - cos).mean()
        return out
