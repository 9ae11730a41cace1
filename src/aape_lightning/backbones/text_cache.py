"""Encode each unique text once per backbone: in memory, and on disk keyed by backbone hash + text."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)


class TextFeatureCache:
    """Maps text -> frozen embedding; misses are encoded in one batch and appended to disk.

    The file name carries the backbone's content hash, so another backbone (or a changed
    checkpoint file) never reads stale embeddings. Only the process with ``writer=True``
    (rank 0 under DDP) writes; writes go to a temp file and are renamed into place.
    """

    def __init__(self, encode: Callable[[list[str]], Tensor], key: str, cache_dir: str | Path | None) -> None:
        self.encode = encode
        self.path = Path(cache_dir) / "text_features" / f"{key}.pt" if cache_dir else None
        self._memory: dict[str, Tensor] = {}
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        if self.path is None or not self.path.is_file():
            return
        try:
            stored = torch.load(self.path, map_location="cpu", weights_only=True)
            self._memory.update(zip(stored["texts"], stored["features"]))
        except Exception as err:  # a broken cache is rebuilt, never trusted
            log.warning("ignoring unreadable text-feature cache %s (%s); it will be rewritten", self.path, err)

    def _save(self, writer: bool) -> None:
        if self.path is None or not writer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._memory)
        payload = {"texts": texts, "features": torch.stack([self._memory[t] for t in texts])}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        os.close(fd)
        torch.save(payload, tmp)
        os.replace(tmp, self.path)

    def __call__(self, texts: Sequence[str], device: torch.device | None = None, writer: bool = True) -> Tensor:
        """``texts`` -> ``(N, d)`` fp32 embeddings on ``device``."""
        if not self._loaded:
            self._load()
        todo = list(dict.fromkeys(t for t in texts if t not in self._memory))
        if todo:
            feats = self.encode(todo).detach().float().cpu()  # (len(todo), d)
            self._memory.update(zip(todo, feats))
            self._save(writer)
            log.debug("encoded %d new texts", len(todo))
        out = torch.stack([self._memory[t] for t in texts]) if texts else torch.empty(0)
        return out.to(device) if device is not None else out
