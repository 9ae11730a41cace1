"""How ``aape table`` starts its runs: the small interface a local pool and a cluster launcher share.

The table runner (table.py) decides what to run, reuses finished runs, saves results and reports
progress; a launcher only starts a call somewhere (this process, a worker pinned to a GPU, a SLURM
job), says which calls have ended, hands back each one's result (or raises its error) and, on an
interrupt, stops everything it started. ``slots`` is how many calls it keeps in flight.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any


class TableInterrupted(BaseException):
    """SIGINT / SIGTERM reached ``aape table``: not an Exception, so no per-run handler swallows it.

    ``done`` and ``total`` are filled in by the runner before it re-raises (for the one line it prints).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum, self.done, self.total = signum, 0, 0


class Launcher(ABC):
    """Starts calls, reports which ended, stops all on an interrupt (see the module docstring)."""

    slots: int = 1  # calls in flight at once
    threads: int | None = None  # torch threads of each call (None: all the CPUs the call may use)

    @abstractmethod
    def submit(self, run_dir: Path, key: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` for the run in ``run_dir`` whose content key is ``key``; returns a handle."""

    @abstractmethod
    def wait(self, handles: list[Any]) -> list[Any]:
        """Block until at least one of ``handles`` has ended; return those that have."""

    @abstractmethod
    def result(self, handle: Any) -> Any:
        """The ended call's return value; raises its error (an Exception) when it failed."""

    @abstractmethod
    def stop(self) -> None:
        """Interrupt: end every call still in flight (and every process it started), within seconds."""

    def close(self) -> None:  # noqa: B027 - optional: only launchers that keep workers need it
        """The table is done: release workers."""
