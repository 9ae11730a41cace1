"""Where the project keeps what it can rebuild (CLIP downloads, text features, few-shot samples).

Its own module, free of torch, so that light commands (``aape data list``) can name it.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$AAPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/aape``, else ``~/.cache/aape``."""
    if os.environ.get("AAPE_CACHE_DIR"):
        return Path(os.environ["AAPE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aape"
