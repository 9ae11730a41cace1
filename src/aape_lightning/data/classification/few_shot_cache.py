"""The sampled few-shot split as JSON, so a run reuses it and anyone can see which images it used.

The files live under the user cache dir, never in the data folder: a data folder stays as the
user left it (an ``ImageFolderReader`` would otherwise read the cache folder as a class).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from aape_lightning.cache_dir import default_cache_dir
from aape_lightning.data.classification.records import LabelledImage

log = logging.getLogger(__name__)

CACHE_FOLDER = "split_fewshot"
# What earlier versions (and CoOp) wrote into <data root>/split_fewshot: samples and temp files.
_WRITTEN = re.compile(r"shot_-?\d+-seed_-?\d+\.(json|pkl|tmp|json\..+\.tmp)")


def few_shot_dir(root: Path, name: str) -> Path:
    """``<cache dir>/split_fewshot/<name>-<hash of the data folder's absolute path>``."""
    key = hashlib.sha256(str(Path(root).expanduser().resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return default_cache_dir() / CACHE_FOLDER / f"{name}-{key}"


def is_few_shot_folder(folder: Path) -> bool:
    """A ``split_fewshot`` folder holding only few-shot files: written by a tool, not a class of images."""
    return folder.name == CACHE_FOLDER and all(_WRITTEN.fullmatch(p.name) for p in folder.iterdir())


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
    # a unique temporary name per writer, then an atomic rename: concurrent runs never collide
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(payload, indent=1))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_few_shot(path: Path, meta: dict) -> tuple[list[LabelledImage], list[LabelledImage]] | None:
    """The cached sample if its ``meta`` (dataset fingerprint, shots, seed) matches, else None.

    A damaged file (any bytes: truncated, not UTF-8, not JSON, another shape) is a warning and
    None, so the split is drawn again and the file rewritten: a cache is never trusted nor fatal.
    """
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
        if payload.get("meta") != meta:
            return None
        return (
            [LabelledImage(p, int(y), c) for p, y, c in payload["train"]],
            [LabelledImage(p, int(y), c) for p, y, c in payload["val"]],
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:  # ValueError: UTF-8 and JSON too
        log.warning("few-shot split cache %s is unreadable (%s: %s); drawing the split again and rewriting it",
                    path, type(err).__name__, str(err)[:120])
        return None
