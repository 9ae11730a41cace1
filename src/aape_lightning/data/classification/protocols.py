"""CoOp's protocols, exactly: few-shot sampling before any class split, then base-to-new."""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import defaultdict
from collections.abc import Sequence

from aape_lightning.data.classification.records import LabelledImage

log = logging.getLogger(__name__)

# Changes whenever the sampler would pick other images for the same (split, shots, seed), so
# few-shot caches written by an older sampler are resampled instead of served stale.
SAMPLER = "dassl-v1"


def sample_few_shot(
    train: Sequence[LabelledImage],
    val: Sequence[LabelledImage],
    shots: int,
    seed: int,
    val_shots: int | None = None,
    source: str = "few-shot",
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """The images Dassl's ``generate_fewshot_dataset`` picks in CoOp's datasets, in its order.

    CoOp seeds Python's generator once (``set_random_seed``) and draws ``shots`` training items,
    then ``val_shots`` (default ``min(shots, 4)``) validation items, from that one stream; each
    split is walked class by class in the order labels first appear in it. This happens before
    any base/new class split. A class with fewer items keeps all it has (Dassl without
    ``repeat``) and a warning names those classes and their counts. ``shots <= 0`` keeps every
    training item, ``val_shots <= 0`` every validation item. ``source`` names the data in the warning.
    """
    val_shots = min(shots, 4) if val_shots is None else val_shots
    rng = random.Random(seed)  # the stream of random.seed(seed), which Dassl's set_random_seed calls
    sampled_train = _per_class(train, shots, rng, f"{source} train") if shots > 0 else list(train)
    sampled_val = _per_class(val, val_shots, rng, f"{source} val") if val_shots > 0 else list(val)
    return sampled_train, sampled_val


def _per_class(items: Sequence[LabelledImage], shots: int, rng: random.Random, split: str) -> list[LabelledImage]:
    """``rng.sample(group, shots)`` per label, labels in first-appearance order."""
    groups = by_label(items)
    warn_short_classes(groups, shots, split)
    out: list[LabelledImage] = []
    for group in groups.values():
        out += rng.sample(group, shots) if len(group) >= shots else list(group)
    return out


def by_label(items: Sequence[LabelledImage]) -> dict[int, list[LabelledImage]]:
    """Items grouped by label, labels in the order they first appear (Dassl's ``split_dataset_by_label``)."""
    groups: dict[int, list[LabelledImage]] = defaultdict(list)
    for it in items:
        groups[it.label].append(it)
    return dict(groups)


def warn_short_classes(groups: dict[int, list[LabelledImage]], shots: int, split: str) -> dict[str, int]:
    """Log which classes have fewer than ``shots`` items (and how many); returns ``{class: count}``."""
    short = {g[0].classname: len(g) for g in groups.values() if len(g) < shots}
    if short:
        listed = ", ".join(f"{name!r} {n}" for name, n in list(short.items())[:10])
        more = f" and {len(short) - 10} more" if len(short) > 10 else ""
        log.warning(
            "%s: %d classes have fewer than %d images and keep all they have (Dassl without repeat): %s%s",
            split, len(short), shots, listed, more,
        )
    return short


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
        digest.update(f"{it.path}\t{it.label}\n".encode(errors="surrogateescape"))  # UTF-8; a file name's undecodable byte as itself
    return digest.hexdigest()[:16]
