"""CoOp's protocols, exactly: few-shot sampling before any class split, then base-to-new."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from aape_lightning.data.items import Item
from aape_lightning.errors import DataError


def sample_few_shot(items: Sequence[Item], shots: int, seed: int) -> list[Item]:
    """``shots`` items per label, drawn with ``random.Random(seed)`` over labels in order.

    A class with fewer items keeps all it has (as CoOp does without ``repeat``);
    ``shots <= 0`` keeps everything.
    """
    if shots <= 0:
        return list(items)
    by_label: dict[int, list[Item]] = defaultdict(list)
    for it in items:
        by_label[it.label].append(it)
    rng = random.Random(seed)
    out: list[Item] = []
    for label in sorted(by_label):
        group = by_label[label]
        out += rng.sample(group, shots) if len(group) >= shots else list(group)
    return out


def base_new_labels(num_classes: int) -> tuple[list[int], list[int]]:
    """Sorted labels; base = the first ceil(n/2), new = the rest."""
    labels = list(range(num_classes))
    m = math.ceil(num_classes / 2)
    return labels[:m], labels[m:]


def subsample_classes(items: Sequence[Item], labels: Sequence[int]) -> list[Item]:
    """Keep items whose label is in ``labels`` and relabel them 0.. in the order of ``labels``."""
    relabel = {old: new for new, old in enumerate(labels)}
    return [Item(it.path, relabel[it.label], it.classname) for it in items if it.label in relabel]


def split_fingerprint(items: Sequence[Item]) -> str:
    """Content key of a split: changes when any path or label changes."""
    digest = hashlib.sha256()
    for it in items:
        digest.update(f"{it.path}\t{it.label}\n".encode())
    return digest.hexdigest()[:16]


def save_few_shot(path: Path, train: Sequence[Item], val: Sequence[Item], meta: dict) -> None:
    """The exact sample as JSON: image paths per class, for train and val."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def per_class(items: Sequence[Item]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for it in items:
            out[f"{it.label}:{it.classname}"].append(it.path)
        return dict(out)

    payload = {"meta": meta, "train": [[it.path, it.label, it.classname] for it in train],
               "val": [[it.path, it.label, it.classname] for it in val],
               "train_by_class": per_class(train)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def load_few_shot(path: Path, meta: dict) -> tuple[list[Item], list[Item]] | None:
    """The cached sample if its ``meta`` (dataset fingerprint, shots, seed) matches, else None."""
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"few-shot cache {path} is corrupt ({err}); delete it to resample") from err
    if payload.get("meta") != meta:
        return None
    return ([Item(p, int(y), c) for p, y, c in payload["train"]], [Item(p, int(y), c) for p, y, c in payload["val"]])
