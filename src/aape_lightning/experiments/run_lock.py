"""One lock per table run, so that two ``aape table`` calls on one spec never train the same run twice.

``fcntl.flock`` on ``<run_dir>/.lock``: held by the runner process while the run is in flight (a
worker or a cluster job computes it), released when the run ends or the process dies (the kernel
drops it, so a killed runner never leaves a stale lock). The second caller does not block: it
moves on to other runs and comes back, and then reuses the first caller's result.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLock:
    """A non-blocking exclusive lock on one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when another process does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by workers (O_CLOEXEC by default)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
