"""What a folder holds (every path, size and content hash), to assert that bad input changed nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """``relative path -> (size, sha256)`` of every file, and ``(-1, "")`` for every folder, under ``folder``."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()) if path.is_file() else (-1, "")
    return out
