"""What every classification head shares: class sets, their cached text features, one output type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from aape_lightning.backbones.frozen_clip import FrozenCLIP
from aape_lightning.core.aape import AAPECore
from aape_lightning.errors import DataError, TextTooLongError


@dataclass
class HeadOutput:
    """The same structure in training and evaluation."""

    logits: Tensor  # (B, K) over the requested class set
    losses: dict[str, Tensor] = field(default_factory=dict)  # extra weighted losses, empty in eval


CoreFactory = Callable[[int], AAPECore]  # the task's ``core`` block, called with the backbone's width


class ClassificationHead(nn.Module):
    """Base class; the task builds a head by calling its class with the frozen backbone and the task's
    AAPE ``core`` (``HeadFactory``): heads that read h(x) build it (AAPEHead), the others ignore it, so the
    core's YAML block sits at ``model.init_args.core`` in every task.

    A head may score any named class set ("base", "new", "all"...): class names arrive after
    construction through ``set_classes`` so that one trained head serves unseen classes.
    ``prompt_sets`` says which class sets' prompt embeddings the head needs: "train" (only while
    training, e.g. AAPE), "all" (every set it scores, e.g. CuPL) or None.
    """

    prompt_sets: str | None = None
    diagnostics: tuple[str, ...] = ()  # names of the extra test-time logits of ``diagnostic_logits``

    def __init__(self, backbone: FrozenCLIP, *, core: CoreFactory | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "backbone", backbone)  # shared with the task, not owned (no double registration)
        self.class_sets: dict[str, tuple[list[str], str]] = {}
        self.templates: list[str] | None = None  # set by heads that ensemble templates
        self._class_features: dict[str, Tensor] = {}

    def set_classes(self, name: str, classnames: list[str], template: str) -> None:
        """Register the class set ``name``; ``template`` holds one ``{}`` for the class name."""
        if "{}" not in template:
            raise DataError(f"class template {template!r} has no '{{}}' where the class name goes; add one")
        check_class_names(self.backbone, name, classnames, self.longest_template(template))
        self.class_sets[name] = (list(classnames), template)
        self._class_features.pop(name, None)

    def longest_template(self, template: str) -> str:
        """The longest text this head tokenises per class, ``{}`` for the name (checked before training)."""
        templates = self.templates or [template]
        return max(templates, key=lambda t: self.backbone.token_count(t.format("")))

    def set_prompts(self, class_set: str, embeddings: Tensor, mask: Tensor) -> None:
        """``(K, M, d)`` prompt embeddings of a class set's classes and their ``(K, M)`` mask."""
        raise TypeError(f"{type(self).__name__} does not use prompts")

    @property
    def trains(self) -> bool:
        """Whether fitting changes anything (heads that build parameters per class set override this)."""
        return any(p.requires_grad for p in self.parameters())

    def supports(self, class_set: str) -> bool:
        """Whether the head can score ``class_set`` (a linear probe knows only its training classes)."""
        return True

    def class_features(self, name: str) -> Tensor:
        """``(K, d)`` frozen text features of the class template(s), computed once per set.

        With several templates (``self.templates``) each class's feature is the normalised mean
        of its normalised template features (CLIP's prompt ensembling).
        """
        if name not in self.class_sets:
            raise KeyError(f"class set {name!r} was never registered; known: {sorted(self.class_sets)}")
        feats = self._class_features.get(name)
        if feats is None or feats.device != self.backbone.device:
            names, template = self.class_sets[name]
            templates = self.templates or [template]
            texts = [t.format(c) for t in templates for c in names]
            feats = self.backbone.text_features(texts).view(len(templates), len(names), -1)  # (T, K, d)
            feats = torch.nn.functional.normalize(feats.mean(0))  # (K, d), each row to unit length (normalize's dim=1)
            self._class_features[name] = feats
        return feats

    def forward(self, image: Tensor, class_set: str, labels: Tensor | None = None) -> HeadOutput:
        """``image (B, d)`` unit features; ``labels`` only in training (heads that need targets)."""
        raise NotImplementedError

    def diagnostic_logits(self, image: Tensor, class_set: str) -> dict[str, Tensor]:
        """Extra ``(B, K)`` logits the task scores at test time, named as in ``diagnostics`` (none here)."""
        return {}


class HeadFactory(Protocol):
    """What ``ClassificationTask.head`` is: a head class with its YAML options, called with the backbone and
    the task's core (the core is the task's option, never the head's: jsonargparse leaves it out of the head's)."""

    def __call__(self, backbone: FrozenCLIP, /, *, core: CoreFactory) -> ClassificationHead: ...


def check_class_names(
    backbone: FrozenCLIP, class_set: str, classnames: list[str], pattern: str, fix: str = "or use a shorter template"
) -> None:
    """Every class name fits the backbone's text context as ``pattern.format(name)``, else one line naming it."""
    limit = backbone.context_length
    for name in classnames:
        text = pattern.format(name)
        n = backbone.token_count(text)
        if n > limit:
            raise TextTooLongError(
                f"class name {_shown(name)!r} of class set {class_set!r} takes {n} tokens as {_shown(text)!r}, more "
                f"than the backbone's text context of {limit} (SOS and EOT included); shorten that class name in "
                f"the dataset (its split file or class folder), {fix}"
            )


def _shown(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def zero_shot_logits(image: Tensor, class_features: Tensor, logit_scale: Tensor) -> Tensor:
    """tau * cos(f(x), c_k): ``(B, d) x (K, d) -> (B, K)``."""
    return logit_scale * image @ class_features.t().to(image.dtype)


__all__ = ["ClassificationHead", "CoreFactory", "HeadFactory", "HeadOutput", "check_class_names", "zero_shot_logits"]
