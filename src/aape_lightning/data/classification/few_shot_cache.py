"""The sampled few-shot split as JSON, so a run reuses it and anyone can see which images it used."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from aape_lightning.data.classification.records import LabelledImage
from aape_lightning.errors import DataError


def save_few_shot(path: Path, train: Sequence[LabelledImage], val: Sequence[LabelledImage], meta: dict) -> None:
    """The exact sample as JSON: image paths per class, for train and val."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def per_class(items: Sequence[LabelledImage]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for it in items:
            out[f"{it.label}:{it.classname}"].append(it.path)
        return dict(out)

    # {"meta": {...}, "train"|"val": [[path, label, classname], ...], "train_by_class": {"<label>:<name>": [path]}}
    payload = {"meta": meta, "train": [[it.path, it.label, it.classname] for it in train],
               "val": [[it.path, it.label, it.classname] for it in val],
               "train_by_class": per_class(train)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def load_few_shot(path: Path, meta: dict) -> tuple[list[LabelledImage], list[LabelledImage]] | None:
    """The cached sample if its ``meta`` (dataset fingerprint, shots, seed) matches, else None."""
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"few-shot cache {path} is corrupt ({err}); delete it to resample") from err
    if payload.get("meta") != meta:
        return None
    return (
        [LabelledImage(p, int(y), c) for p, y, c in payload["train"]],
        [LabelledImage(p, int(y), c) for p, y, c in payload["val"]],
    )
