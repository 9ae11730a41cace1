"""Encode each unique text once per backbone: in memory, and on disk keyed by backbone hash + text."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

try:  # POSIX: writers of one cache file take turns; elsewhere the merge alone narrows the race
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


class TextFeatureCache:
    """Maps text -> frozen embedding; misses are encoded in one batch and added to disk.

    The file name carries the backbone's content hash, so another backbone (or a changed
    checkpoint file) never reads stale embeddings. Only the process with ``writer=True``
    (rank 0 under DDP) writes. A write merges what other writers stored meanwhile (under a lock
    file where the OS has one), goes to a uniquely named temp file and is renamed into place, so
    concurrent writers neither corrupt the file nor lose each other's entries. A cache that
    cannot be written is a warning: encoding goes on in memory.
    """

    def __init__(self, encode: Callable[[list[str]], Tensor], key: str, cache_dir: str | Path | None) -> None:
        self.encode = encode
        self.path = Path(cache_dir) / "text_features" / f"{key}.pt" if cache_dir else None
        self._memory: dict[str, Tensor] = {}
        self._loaded = False
        self._warned = False

    def _read(self) -> dict[str, Tensor]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            stored = torch.load(self.path, map_location="cpu", weights_only=True)
            texts, feats = stored["texts"], stored["features"]  # [N] str, (N, d)
            if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts) and isinstance(feats, Tensor)
                    and feats.ndim == 2 and len(feats) == len(texts) and feats.is_floating_point()):
                raise ValueError("not a {'texts': [N strings], 'features': (N, d) float tensor} payload")
            return dict(zip(texts, feats))
        except Exception as err:  # noqa: BLE001 - any bytes at all: a broken cache is rebuilt, never trusted
            if not self._warned:  # once: the merge before each write reads the file again
                log.warning("ignoring unreadable text-feature cache %s (%s: %s); it will be rewritten", self.path,
                            type(err).__name__, str(err)[:120])
                self._warned = True
            return {}

    def _load(self) -> None:
        self._loaded = True
        self._memory.update(self._read())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, writer: bool) -> None:
        if self.path is None or not writer:
            return
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                for text, feat in self._read().items():  # what other writers added since we loaded
                    self._memory.setdefault(text, feat)
                texts = list(self._memory)
                payload = {"texts": texts, "features": torch.stack([self._memory[t] for t in texts])}
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".tmp")
                os.close(fd)
                torch.save(payload, tmp)
                os.replace(tmp, self.path)
                tmp = None
        except OSError as err:
            log.warning("cannot write the text-feature cache %s (%s); going on in memory only", self.path, err)
            self.path = None  # stop trying: one warning, not one per batch
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

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
