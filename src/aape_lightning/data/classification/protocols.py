"""CoOp's protocols, exactly: few-shot sampling before any class split, then base-to-new."""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Sequence

from aape_lightning.data.classification.records import LabelledImage


def sample_few_shot(items: Sequence[LabelledImage], shots: int, seed: int) -> list[LabelledImage]:
    """``shots`` items per label, drawn with ``random.Random(seed)`` over labels in order.

    A class with fewer items keeps all it has (as CoOp does without ``repeat``);
    ``shots <= 0`` keeps everything.
    """
    if shots <= 0:
        return list(items)
    by_label: dict[int, list[LabelledImage]] = defaultdict(list)
    for it in items:
        by_label[it.label].append(it)
    rng = random.Random(seed)
    out: list[LabelledImage] = []
    for label in sorted(by_label):
        group = by_label[label]
        out += rng.sample(group, shots) if len(group) >= shots else list(group)
    return out


def base_new_labels(num_classes: int) -> tuple[list[int], list[int]]:
    """Sorted labels; base = the first ceil(n/2), new = the rest."""
    labels = list(range(num_classes))
    m = math.ceil(num_classes / 2)
    return labels[:m], labels[m:]


def subsample_classes(items: Sequence[LabelledImage], labels: Sequence[int]) -> list[LabelledImage]:
    """Keep items whose label is in ``labels`` and relabel them 0.. in the order of ``labels``."""
    relabel = {old: new for new, old in enumerate(labels)}
    return [LabelledImage(it.path, relabel[it.label], it.classname) for it in items if it.label in relabel]


def split_fingerprint(items: Sequence[LabelledImage]) -> str:
    """Content key of a split: changes when any path or label changes."""
    digest = hashlib.sha256()
    for it in items:
        digest.update(f"{it.path}\t{it.label}\n".encode())
    return digest.hexdigest()[:16]
